import assert from "node:assert/strict";
import { SqliteStorage, type TaskRecord, WorkerBuilder } from "../../mod.ts";
import { captureIo, main } from "../../lib/cli/mod.ts";
import { tempDatabase, waitUntil } from "../_helpers.ts";

async function run(path: string, args: string[]) {
  const io = captureIo({ env: { APALIS_DB: path } });
  const code = await main(args, io);
  return { code, out: io.out, err: io.err };
}

Deno.test("retryCommand.run() makes a killed task pending again and prints its state", async () => {
  await using temp = await tempDatabase();
  const storage = new SqliteStorage(temp.db, "email");
  const id = await storage.push(1);
  await storage.kill(id);
  const { code, out, err } = await run(temp.path, ["retry", id]);
  assert.equal(err, "");
  assert.equal(code, 0);
  assert.equal(out, `Task ${id} is pending again\n`);
  const task = await storage.fetchById(id);
  assert.equal(task?.status, "pending");
  assert.equal(task?.doneAt, null);
  await storage.kill(id);
  const json = await run(temp.path, ["retry", "--json", id]);
  const record: TaskRecord = JSON.parse(json.out);
  assert.equal(record.id, id);
  assert.equal(record.status, "pending");
});

Deno.test("retryCommand.run() and killCommand.run() treat an unknown id as bad input (exit 2)", async () => {
  await using temp = await tempDatabase();
  for (const command of ["retry", "kill"]) {
    const { code, out, err } = await run(temp.path, [command, "nope"]);
    assert.equal(code, 2);
    assert.equal(out, "");
    assert.equal(err, `apalis ${command}: Cannot find task 'nope': no task has this id\n`);
  }
});

Deno.test("retryCommand.run() refuses a running task with exit 1, killCommand.run() kills it", async () => {
  await using temp = await tempDatabase();
  const storage = new SqliteStorage(temp.db, "email");
  const id = await storage.push(1);
  const { promise: release, resolve } = Promise.withResolvers<void>();
  const worker = new WorkerBuilder("slow").backend(storage).handleSignals(false).build(() =>
    release
  );
  const running = worker.run();
  try {
    await waitUntil(async () => (await storage.fetchById(id))?.status === "running", "running");
    const retry = await run(temp.path, ["retry", id]);
    assert.equal(retry.code, 1);
    assert.equal(retry.err, `apalis retry: Cannot retry task '${id}': it is running\n`);
    assert.equal((await storage.fetchById(id))?.status, "running");
    const kill = await run(temp.path, ["kill", id, "--reason", "customer cancelled"]);
    assert.equal(kill.code, 0);
    assert.equal(kill.out, `Task ${id} is killed\n`);
  } finally {
    resolve();
    await worker.stop();
    await running;
  }
  const task = await storage.fetchById(id);
  assert.equal(task?.status, "killed", "the handler's outcome is discarded");
  assert.deepEqual(
    { name: task?.lastError?.name, message: task?.lastError?.message },
    { name: "KilledError", message: "customer cancelled" },
  );
});

Deno.test("retryCommand.run() retries every killed or failed task of a queue with --queue --status", async () => {
  await using temp = await tempDatabase();
  const storage = new SqliteStorage(temp.db, "email");
  const killed = [await storage.push(1), await storage.push(2), await storage.push(3)];
  for (const id of killed) await storage.kill(id);
  const other = storage.forQueue("sms");
  const otherId = await other.push(4);
  await other.kill(otherId);
  const failedId = await storage.push({ fail: true }, { maxAttempts: 3 });
  const worker = new WorkerBuilder("failer")
    .backend(storage)
    .retry({ backoff: { initialMs: 3_600_000 } })
    .handleSignals(false)
    .build(() => {
      throw new Error("no");
    });
  const running = worker.run();
  await waitUntil(async () => (await storage.fetchById(failedId))?.status === "failed", "failed");
  await worker.stop();
  await running;

  const { code, out } = await run(temp.path, ["retry", "--queue", "email", "--status", "killed"]);
  assert.equal(code, 0);
  assert.equal(out, "Retried 3 killed tasks in queue 'email'\n");
  assert.equal((await storage.stats("email")).killed, 0);
  assert.equal((await other.fetchById(otherId))?.status, "killed", "other queues are untouched");
  assert.equal((await storage.fetchById(failedId))?.status, "failed");

  const failed = await run(temp.path, ["retry", "--queue=email", "--status=failed", "--json"]);
  assert.deepEqual(JSON.parse(failed.out), { retried: 1 });
  const task = await storage.fetchById(failedId);
  assert.equal(task?.status, "pending");
  assert.equal(task?.attempts, 0);
  const none = await run(temp.path, ["retry", "--queue", "email", "--status", "failed"]);
  assert.equal(none.out, "Retried 0 failed tasks in queue 'email'\n");
});

Deno.test("retryCommand.run() rejects bad usage with exit 2 and changes nothing", async () => {
  await using temp = await tempDatabase();
  const storage = new SqliteStorage(temp.db, "email");
  const id = await storage.push(1);
  await storage.kill(id);
  const cases: [string[], RegExp][] = [
    [["retry"], /missing ID/],
    [["retry", id, "--queue", "email", "--status", "killed"], /either an ID or --queue/],
    [["retry", "--status", "killed"], /'--status' needs --queue/],
    [["retry", "--queue", "email"], /'--status' must be killed or failed: got nothing/],
    [["retry", "--queue", "email", "--status", "done"], /must be killed or failed: got 'done'/],
    [["retry", id, "other"], /unexpected argument 'other'/],
  ];
  for (const [args, message] of cases) {
    const { code, out, err } = await run(temp.path, args);
    assert.equal(code, 2, args.join(" "));
    assert.equal(out, "");
    assert.match(err, message);
  }
  assert.equal((await storage.fetchById(id))?.status, "killed");
});

Deno.test("killCommand.run() kills a pending task with a reason and prints JSON with --json", async () => {
  await using temp = await tempDatabase();
  const storage = new SqliteStorage(temp.db, "email");
  const id = await storage.push(1);
  const { code, out } = await run(temp.path, ["kill", id, "--json"]);
  assert.equal(code, 0);
  const record: TaskRecord = JSON.parse(out);
  assert.equal(record.status, "killed");
  assert.equal(record.lastError?.message, "Killed by request");
  assert.equal((await storage.fetchById(id))?.status, "killed");
});

Deno.test("killCommand.run() refuses a finished task with exit 1 and bad usage with exit 2", async () => {
  await using temp = await tempDatabase();
  const storage = new SqliteStorage(temp.db, "email");
  const id = await storage.push(1);
  await storage.kill(id, "first");
  const again = await run(temp.path, ["kill", id, "--reason", "second"]);
  assert.equal(again.code, 1);
  assert.equal(again.err, `apalis kill: Cannot kill task '${id}': it is killed\n`);
  assert.equal((await storage.fetchById(id))?.lastError?.message, "first");
  for (const args of [["kill"], ["kill", id, "x"], ["kill", id, "--reason"]]) {
    assert.equal((await run(temp.path, args)).code, 2, args.join(" "));
  }
});
