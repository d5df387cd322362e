import assert from "node:assert/strict";
import { SqliteStorage, type TaskRecord, WorkerBuilder } from "../../mod.ts";
import { captureIo, main } from "../../lib/cli/mod.ts";
import { runUntilFinished, tempDatabase } from "../_helpers.ts";

async function run(path: string, args: string[]) {
  const io = captureIo({ env: { APALIS_DB: path } });
  const code = await main(args, io);
  return { code, out: io.out, err: io.err };
}

/** Runs a real worker until `ids` finish: `{ fail: true }` payloads throw, others return. */
async function work(storage: SqliteStorage<{ fail?: boolean }>, ids: string[]) {
  const worker = new WorkerBuilder("show-worker")
    .backend(storage)
    .handleSignals(false)
    .build((args) => {
      if (args.fail) throw new TypeError("the mail server said no");
      return { sent: true, at: "server-1" };
    });
  await runUntilFinished(worker, storage, ids);
}

Deno.test("showCommand.run() shows a done task's fields, payload and result", async () => {
  await using temp = await tempDatabase();
  const storage = new SqliteStorage<{ fail?: boolean; to?: string }>(temp.db, "email");
  const id = await storage.push({ to: "ada@example.com" }, {
    priority: 4,
    meta: { tenant: "acme" },
  });
  await work(storage, [id]);
  const task = (await storage.fetchById(id))!;
  const { code, out, err } = await run(temp.path, ["show", id]);
  assert.equal(err, "");
  assert.equal(code, 0);
  const expected = [
    `Task ${id}`,
    "  queue      email",
    "  status     done",
    "  attempts   1/5",
    "  priority   4",
    `  created    ${new Date(task.createdAt).toISOString()}`,
    `  run at     ${new Date(task.runAt).toISOString()}`,
    `  locked at  ${new Date(task.lockAt!).toISOString()}`,
    `  done at    ${new Date(task.doneAt!).toISOString()}`,
    "  worker     show-worker",
    "",
    "Payload:",
    "  {",
    '    "to": "ada@example.com"',
    "  }",
    "",
    "Result:",
    "  {",
    '    "sent": true,',
    '    "at": "server-1"',
    "  }",
    "",
    "Meta:",
    "  {",
    '    "tenant": "acme"',
    "  }",
    "",
  ].join("\n");
  assert.equal(out, expected);
});

Deno.test("showCommand.run() shows a killed task's error with its stack", async () => {
  await using temp = await tempDatabase();
  const storage = new SqliteStorage<{ fail?: boolean }>(temp.db, "email");
  const id = await storage.push({ fail: true }, { maxAttempts: 1 });
  await work(storage, [id]);
  const { code, out } = await run(temp.path, ["show", id]);
  assert.equal(code, 0);
  assert.ok(out.includes("\n  status     killed\n"));
  assert.ok(out.includes("\n  attempts   1/1\n"));
  assert.match(out, /\nError:\n {2}TypeError: the mail server said no\n {6}at .*show_test\.ts/);
  assert.equal(out.match(/the mail server said no/g)?.length, 1, "the message is shown once");
  assert.doesNotMatch(out, /Result:/);
});

Deno.test("showCommand.run() prints the task record with --json", async () => {
  await using temp = await tempDatabase();
  const storage = new SqliteStorage(temp.db, "email");
  const id = await storage.push({ to: "a" });
  const { code, out } = await run(temp.path, ["show", id, "--json"]);
  assert.equal(code, 0);
  const record: TaskRecord = JSON.parse(out);
  assert.deepEqual(record, JSON.parse(JSON.stringify(await storage.fetchById(id))));
  assert.equal(record.status, "pending");
  assert.deepEqual(record.args, { to: "a" });
});

Deno.test("showCommand.run() treats an unknown or missing id as bad input (exit 2)", async () => {
  await using temp = await tempDatabase();
  const unknown = await run(temp.path, ["show", "nope"]);
  assert.equal(unknown.code, 2);
  assert.equal(unknown.out, "");
  assert.equal(unknown.err, "apalis show: Cannot find task 'nope': no task has this id\n");
  const missing = await run(temp.path, ["show"]);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /missing ID/);
});
