import assert from "node:assert/strict";
import { SqliteStorage } from "../../mod.ts";
import { type CapturedIo, captureIo, main } from "../../lib/cli/mod.ts";
import { tempDatabase, waitUntil } from "../_helpers.ts";

async function run(path: string, args: string[], tty = false) {
  const io = captureIo({ env: { APALIS_DB: path }, isTerminal: tty });
  const code = await main(args, io);
  return { code, out: io.out, err: io.err };
}

/** email: 2 pending, 1 killed; sms: 1 pending. */
async function seed(storage: SqliteStorage) {
  const email = storage.forQueue("email");
  await email.push(1);
  await email.push(2);
  await email.kill(await email.push(3));
  await storage.forQueue("sms").push(4);
}

const count = (text: string, part: string) => text.split(part).length - 1;

/** Starts `stats --watch`, waits for `refreshes` tables, interrupts; returns the exit code. */
async function watch(io: CapturedIo, args: string[], refreshes: number, marker: string) {
  const done = main(["stats", "--watch", "--interval", "10ms", ...args], io);
  await waitUntil(() => count(io.out, marker) >= refreshes, `${refreshes} refreshes`);
  io.interrupt();
  return await done;
}

Deno.test("statsCommand.run() prints counts per state per queue with a TOTAL row", async () => {
  await using temp = await tempDatabase();
  await seed(new SqliteStorage(temp.db));
  const { code, out, err } = await run(temp.path, ["stats"]);
  assert.equal(err, "");
  assert.equal(code, 0);
  assert.equal(
    out,
    [
      "QUEUE  PENDING  QUEUED  RUNNING  DONE  FAILED  KILLED  TOTAL",
      "email        2       0        0     0       0       1      3",
      "sms          1       0        0     0       0       0      1",
      "TOTAL        3       0        0     0       0       1      4",
      "",
    ].join("\n"),
  );
});

Deno.test("statsCommand.run() counts one queue without a TOTAL row when given QUEUE", async () => {
  await using temp = await tempDatabase();
  await seed(new SqliteStorage(temp.db));
  const { code, out } = await run(temp.path, ["stats", "email"]);
  assert.equal(code, 0);
  const lines = out.trimEnd().split("\n");
  assert.equal(lines.length, 2);
  assert.match(lines[1]!, /^email +2 +0 +0 +0 +0 +1 +3$/);
  const unknown = await run(temp.path, ["stats", "nothing-here"]);
  assert.match(unknown.out, /\nnothing-here +0 +0 +0 +0 +0 +0 +0\n$/);
});

Deno.test("statsCommand.run() prints queues and total as JSON with --json", async () => {
  await using temp = await tempDatabase();
  await seed(new SqliteStorage(temp.db));
  const { code, out } = await run(temp.path, ["stats", "--json"]);
  assert.equal(code, 0);
  const zero = { pending: 0, queued: 0, running: 0, done: 0, failed: 0, killed: 0, total: 0 };
  assert.deepEqual(JSON.parse(out), {
    queues: {
      email: { ...zero, pending: 2, killed: 1, total: 3 },
      sms: { ...zero, pending: 1, total: 1 },
    },
    total: { ...zero, pending: 3, killed: 1, total: 4 },
  });
  const empty = await run(temp.path, ["stats", "--json", "none"]);
  assert.deepEqual(JSON.parse(empty.out), { queues: { none: zero }, total: zero });
});

Deno.test("statsCommand.run() says so when there are no queues", async () => {
  await using temp = await tempDatabase();
  const { code, out } = await run(temp.path, ["stats"]);
  assert.equal(code, 0);
  assert.equal(out, "No queues yet.\n");
});

Deno.test("statsCommand.run() with --watch prints a new table per interval until interrupted", async () => {
  await using temp = await tempDatabase();
  const storage = new SqliteStorage(temp.db, "email");
  await storage.push(1);
  const io = captureIo({ env: { APALIS_DB: temp.path } });
  const done = main(["stats", "--watch", "--interval", "10ms"], io);
  await waitUntil(() => count(io.out, "QUEUE  PENDING") >= 2, "two tables");
  await storage.push(2);
  await waitUntil(() => /email +2 +0/.test(io.out), "a table with the new task");
  io.interrupt();
  assert.equal(await done, 0);
  assert.equal(io.err, "");
  assert.ok(!io.out.includes("\x1b["), "no ANSI when not a terminal");
  assert.match(io.out, /^Every 10ms: \S+Z \(Ctrl-C to stop\)\nQUEUE/);
  assert.match(io.out, /email +1 +0/);
});

Deno.test("statsCommand.run() with --watch clears the screen on a terminal", async () => {
  await using temp = await tempDatabase();
  const io = captureIo({ env: { APALIS_DB: temp.path, NO_COLOR: "1" }, isTerminal: true });
  assert.equal(await watch(io, [], 2, "\x1b[H\x1b[2J"), 0);
  assert.ok(io.out.startsWith("\x1b[H\x1b[2JEvery 10ms: "));
});

Deno.test("statsCommand.run() with --watch --json prints one JSON object per line", async () => {
  await using temp = await tempDatabase();
  await seed(new SqliteStorage(temp.db));
  const io = captureIo({ env: { APALIS_DB: temp.path } });
  assert.equal(await watch(io, ["--json", "sms"], 3, "\n"), 0);
  const lines = io.out.trimEnd().split("\n");
  assert.ok(lines.length >= 3);
  for (const line of lines) assert.equal(JSON.parse(line).queues.sms.pending, 1);
});

Deno.test("statsCommand.run() rejects a bad --interval with exit 2", async () => {
  await using temp = await tempDatabase();
  const cases: [string[], RegExp][] = [
    [["stats", "--interval", "1s"], /'--interval' only applies with --watch/],
    [["stats", "--watch", "--interval", "often"], /'--interval' must be a duration/],
    [["stats", "--watch", "--interval", "0s"], /'--interval' must be at least 1ms/],
    [["stats", "a", "b"], /unexpected argument 'b'/],
  ];
  for (const [args, message] of cases) {
    const { code, out, err } = await run(temp.path, args);
    assert.equal(code, 2, args.join(" "));
    assert.equal(out, "");
    assert.match(err, message);
  }
});
