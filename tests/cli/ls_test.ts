import assert from "node:assert/strict";
import { SqliteStorage, type TaskRecord } from "../../mod.ts";
import { captureIo, main } from "../../lib/cli/mod.ts";
import { tempDatabase } from "../_helpers.ts";

async function run(path: string, args: string[], env: Record<string, string> = {}, tty = false) {
  const io = captureIo({ env: { APALIS_DB: path, ...env }, isTerminal: tty });
  const code = await main(args, io);
  return { code, out: io.out, err: io.err };
}

/** Three tasks in "email" (one killed with a long reason) and one in "sms". */
async function seed(storage: SqliteStorage) {
  const email = storage.forQueue("email");
  const a = await email.push({ n: 1 }, { priority: 2, runAt: Date.UTC(2030, 0, 1) });
  const b = await email.push({ n: 2 }, { maxAttempts: 3 });
  const c = await email.push({ n: 3 });
  await email.kill(c, `smtp refused\nthe message ${"x".repeat(100)}`);
  const d = await storage.forQueue("sms").push({ n: 4 });
  return { a, b, c, d };
}

Deno.test("lsCommand.run() lists a queue's tasks newest first in a table", async () => {
  await using temp = await tempDatabase();
  const { a, b, c } = await seed(new SqliteStorage(temp.db));
  const { code, out, err } = await run(temp.path, ["ls", "email"]);
  assert.equal(err, "");
  assert.equal(code, 0);
  const lines = out.trimEnd().split("\n");
  assert.match(lines[0]!, /^ID +STATUS +ATTEMPTS +PRIORITY +RUN AT +LAST ERROR$/);
  assert.equal(lines.length, 4);
  assert.match(
    lines[1]!,
    new RegExp(`^${c} +killed +0/5 +0 +\\S+Z +KilledError: smtp refused the message x+…$`),
  );
  assert.ok(lines[1]!.length < 200, "the error is truncated");
  assert.match(lines[2]!, new RegExp(`^${b} +pending +0/3 +0 +\\S+Z$`));
  assert.match(lines[3]!, new RegExp(`^${a} +pending +0/5 +2 +2030-01-01T00:00:00.000Z$`));
  assert.ok(!out.includes("\x1b["));
});

Deno.test("lsCommand.run() lists every queue with a QUEUE column when none is given", async () => {
  await using temp = await tempDatabase();
  const { d } = await seed(new SqliteStorage(temp.db));
  const { code, out } = await run(temp.path, ["ls"]);
  assert.equal(code, 0);
  assert.match(out, /^ID +QUEUE +STATUS/);
  assert.match(out, new RegExp(`\n${d} +sms +pending`));
  assert.equal(out.trimEnd().split("\n").length, 5);
});

Deno.test("lsCommand.run() filters by --status and pages with --limit and --page", async () => {
  await using temp = await tempDatabase();
  const { a, b, c } = await seed(new SqliteStorage(temp.db));
  const killed = await run(temp.path, ["ls", "email", "--status", "killed", "--json"]);
  assert.equal(killed.code, 0);
  assert.deepEqual((JSON.parse(killed.out) as TaskRecord[]).map((t) => t.id), [c]);
  const page1 = await run(temp.path, ["ls", "email", "--limit", "2", "--json"]);
  assert.deepEqual((JSON.parse(page1.out) as TaskRecord[]).map((t) => t.id), [c, b]);
  const page2 = await run(temp.path, ["ls", "email", "--limit", "2", "--page", "2", "--json"]);
  assert.deepEqual((JSON.parse(page2.out) as TaskRecord[]).map((t) => t.id), [a]);
  const empty = await run(temp.path, ["ls", "email", "--status", "done", "--page", "3"]);
  assert.equal(empty.code, 0);
  assert.equal(empty.out, "No tasks in queue 'email' with status done on page 3.\n");
});

Deno.test("lsCommand.run() says on stderr when more tasks match than it shows, and how to see them", async () => {
  await using temp = await tempDatabase();
  const { a, b, c } = await seed(new SqliteStorage(temp.db)); // 3 in email, 1 in sms
  const table = await run(temp.path, ["ls", "email", "--limit", "2"]);
  assert.equal(table.code, 0);
  assert.equal(table.out.trimEnd().split("\n").length, 3, "the table: header and 2 rows");
  assert.equal(
    table.err,
    "apalis ls: showing tasks 1-2 of 3; see more with --page 2, or all at once with --limit 3\n",
  );
  // --json: stdout stays one valid JSON array; the note goes to stderr all the same.
  const json = await run(temp.path, ["ls", "email", "--limit", "2", "--json"]);
  assert.deepEqual((JSON.parse(json.out) as TaskRecord[]).map((t) => t.id), [c, b]);
  assert.equal(json.err, table.err);
  // Every queue, a status filter, and the middle of several pages.
  const all = await run(temp.path, ["ls", "--limit", "1", "--page", "2"]);
  assert.equal(
    all.err,
    "apalis ls: showing task 2 of 4; see more with --page 3, or all at once with --limit 4\n",
  );
  const pending = await run(temp.path, ["ls", "email", "--status", "pending", "--limit", "1"]);
  assert.equal(
    pending.err,
    "apalis ls: showing task 1 of 2; see more with --page 2, or all at once with --limit 2\n",
  );
  // The last page, or everything on one: no note.
  for (const args of [["--limit", "2", "--page", "2"], ["--limit", "3"], []]) {
    const last = await run(temp.path, ["ls", "email", ...args]);
    assert.equal(last.err, "", args.join(" "));
  }
  assert.match(
    (await run(temp.path, ["ls", "email", "--limit", "2", "--page", "2"])).out,
    new RegExp(a),
  );
  // A page past the end says where the tasks are.
  const past = await run(temp.path, ["ls", "email", "--limit", "2", "--page", "5"]);
  assert.equal(past.code, 0);
  assert.equal(past.out, "No tasks in queue 'email' on page 5.\n");
  assert.equal(past.err, "apalis ls: the 3 tasks fill pages 1-2 at --limit 2\n");
  const pastJson = await run(temp.path, ["ls", "email", "--page", "5", "--json"]);
  assert.equal(pastJson.out, "[]\n");
  assert.equal(pastJson.err, "apalis ls: the 3 tasks fill page 1 at --limit 20\n");
  const onlyOne = await run(temp.path, ["ls", "sms", "--page", "2"]);
  assert.equal(onlyOne.err, "apalis ls: the only matching task is on page 1\n");
});

Deno.test("lsCommand.run() prints the task records with --json", async () => {
  await using temp = await tempDatabase();
  const storage = new SqliteStorage(temp.db);
  const { b } = await seed(storage);
  const { code, out } = await run(temp.path, ["--json", "ls", "email", "--status", "pending"]);
  assert.equal(code, 0);
  const tasks: TaskRecord[] = JSON.parse(out);
  assert.equal(tasks.length, 2);
  assert.deepEqual(tasks[0], JSON.parse(JSON.stringify(await storage.fetchById(b))));
});

Deno.test("lsCommand.run() colours states on a terminal unless NO_COLOR is set", async () => {
  await using temp = await tempDatabase();
  await seed(new SqliteStorage(temp.db));
  const tty = await run(temp.path, ["ls", "email"], {}, true);
  assert.ok(tty.out.includes("\x1b[31mkilled\x1b[0m"));
  assert.match(tty.out, /^ID +STATUS +ATTEMPTS/, "headers stay aligned");
  const noColor = await run(temp.path, ["ls", "email"], { NO_COLOR: "1" }, true);
  assert.ok(!noColor.out.includes("\x1b["));
});

Deno.test("lsCommand.run() rejects a bad --status, --limit or --page with exit 2", async () => {
  await using temp = await tempDatabase();
  const cases: [string[], RegExp][] = [
    [["ls", "email", "--status", "lost"], /'--status' must be one of pending, .*: got 'lost'/],
    [["ls", "email", "--limit", "0"], /'--limit' must be a whole number >= 1: got '0'/],
    [["ls", "email", "--page", "x"], /'--page' must be a whole number >= 1/],
    [["ls", "a", "b"], /unexpected argument 'b'/],
  ];
  for (const [args, message] of cases) {
    const { code, out, err } = await run(temp.path, args);
    assert.equal(code, 2, args.join(" "));
    assert.equal(out, "");
    assert.match(err, message);
  }
});
