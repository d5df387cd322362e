import assert from "node:assert/strict";
import { type QueueInfo, SqliteStorage, WorkerBuilder, type WorkerInfo } from "../../mod.ts";
import { captureIo, main } from "../../lib/cli/mod.ts";
import { tempDatabase, waitUntil } from "../_helpers.ts";

async function run(path: string, args: string[], tty = false) {
  const io = captureIo({ env: { APALIS_DB: path }, isTerminal: tty });
  const code = await main(args, io);
  return { code, out: io.out, err: io.err };
}

/** Runs `fn` while a real worker named `name` serves `queue`; stops it after. */
async function withWorker(storage: SqliteStorage, name: string, fn: () => Promise<void>) {
  const worker = new WorkerBuilder(name).backend(storage).handleSignals(false).build(() => "ok");
  const running = worker.run();
  try {
    await waitUntil(
      async () => (await storage.listWorkers()).some((w) => w.name === name && w.alive),
      `worker ${name} registered`,
    );
    await fn();
  } finally {
    await worker.stop();
    await running;
  }
}

Deno.test("queuesCommand.run() lists queues with counts, oldest due age and alive workers", async () => {
  await using temp = await tempDatabase();
  const storage = new SqliteStorage(temp.db);
  const email = storage.forQueue("email");
  await email.push(1, { runAt: Date.now() - 90_000 });
  await email.push(2, { runAfter: 3_600_000 });
  await storage.forQueue("sms").push(3, { runAfter: 3_600_000 });
  await withWorker(storage.forQueue("idle"), "idle-worker", async () => {
    const { code, out, err } = await run(temp.path, ["queues"]);
    assert.equal(err, "");
    assert.equal(code, 0);
    const lines = out.trimEnd().split("\n");
    assert.match(
      lines[0]!,
      /^QUEUE +PENDING +QUEUED +RUNNING +DONE +FAILED +KILLED +TOTAL +OLDEST DUE +WORKERS +STATE +LIMITS$/,
    );
    assert.match(lines[1]!, /^email +2 +0 +0 +0 +0 +0 +2 +1m \d+s +0 +active +-$/);
    assert.match(lines[2]!, /^idle +0 +0 +0 +0 +0 +0 +0 +- +1 +active +-$/);
    assert.match(lines[3]!, /^sms +1 +0 +0 +0 +0 +0 +1 +- +0 +active +-$/);
    assert.equal(lines.length, 4);

    const json = await run(temp.path, ["queues", "--json"]);
    const queues: QueueInfo[] = JSON.parse(json.out);
    assert.deepEqual(queues.map((q) => [q.name, q.counts.total, q.aliveWorkers]), [
      ["email", 2, 0],
      ["idle", 0, 1],
      ["sms", 1, 0],
    ]);
    assert.equal(typeof queues[0]!.oldestDueAt, "number");
    assert.equal(queues[2]!.oldestDueAt, null);
  });
});

Deno.test("queuesCommand.run() says so when there are no queues, and takes no arguments", async () => {
  await using temp = await tempDatabase();
  assert.equal((await run(temp.path, ["queues"])).out, "No queues yet.\n");
  assert.deepEqual(JSON.parse((await run(temp.path, ["queues", "--json"])).out), []);
  const extra = await run(temp.path, ["queues", "email"]);
  assert.equal(extra.code, 2);
  assert.match(extra.err, /unexpected argument 'email'/);
});

Deno.test("workersCommand.run() lists workers with last heartbeat and whether they are alive", async () => {
  await using temp = await tempDatabase();
  const storage = new SqliteStorage(temp.db);
  await withWorker(storage.forQueue("email"), "mailer", async () => {
    await withWorker(storage.forQueue("sms"), "texter", async () => {
      const { code, out, err } = await run(temp.path, ["workers"], true);
      assert.equal(err, "");
      assert.equal(code, 0);
      assert.match(out, /^NAME +QUEUE +HOST +PID +STARTED +LAST HEARTBEAT +ALIVE\n/);
      assert.match(
        out,
        new RegExp(`\ntexter +sms +\\S+ +${Deno.pid} +\\S+Z +\\d+m?s ago +\x1b\\[32myes`),
      );
      assert.match(out, /\nmailer +email /);
    });
    const { out } = await run(temp.path, ["workers", "sms"]);
    assert.match(out, /\ntexter +sms .* ago +no\n$/, "a stopped worker is not alive");
    assert.doesNotMatch(out, /mailer/);
  });
  const { code, out } = await run(temp.path, ["workers", "--json", "email"]);
  assert.equal(code, 0);
  const workers: WorkerInfo[] = JSON.parse(out);
  assert.equal(workers.length, 1);
  assert.equal(workers[0]!.name, "mailer");
  assert.equal(workers[0]!.pid, Deno.pid);
  assert.equal(workers[0]!.alive, false);
  assert.equal(typeof workers[0]!.stoppedAt, "number");
});

Deno.test("workersCommand.run() says so when no worker is registered", async () => {
  await using temp = await tempDatabase();
  assert.equal((await run(temp.path, ["workers"])).out, "No workers.\n");
  assert.equal((await run(temp.path, ["workers", "email"])).out, "No workers in queue 'email'.\n");
  assert.equal((await run(temp.path, ["workers", "a", "b"])).code, 2);
});
