import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { SqliteStorage } from "../../mod.ts";
import { captureIo, main } from "../../lib/cli/mod.ts";
import { tempDatabase } from "../_helpers.ts";

async function run(
  path: string,
  args: string[],
  options: { stdin?: string; isTerminal?: boolean } = {},
) {
  const io = captureIo({ env: { APALIS_DB: path }, ...options });
  const code = await main(args, io);
  return { code, out: io.out, err: io.err };
}

function ndjson(count: number, bad?: { line: number; text: string }): string {
  const lines = Array.from({ length: count }, (_, i) => JSON.stringify({ n: i + 1 }));
  if (bad) lines[bad.line - 1] = bad.text;
  return lines.join("\n") + "\n";
}

Deno.test("pushCommand.run() enqueues one JSON payload and prints its id", async () => {
  await using temp = await tempDatabase();
  const { code, out, err } = await run(temp.path, ["push", "email", '{"to":"ada@example.com"}']);
  assert.equal(err, "");
  assert.equal(code, 0);
  const id = out.trim();
  const task = await new SqliteStorage(temp.db).fetchById(id);
  assert.equal(task?.queue, "email");
  assert.deepEqual(task?.args, { to: "ada@example.com" });
  assert.equal(task?.status, "pending");
  assert.equal(task?.priority, 0);
  assert.equal(task?.maxAttempts, 5);
});

Deno.test("pushCommand.run() applies --priority, --max-attempts, --run-at and --id", async () => {
  await using temp = await tempDatabase();
  const { code, out } = await run(temp.path, [
    "push",
    "email",
    "[1,2]",
    "--priority",
    "7",
    "--max-attempts=2",
    "--run-at",
    "2030-01-02T03:04:05Z",
    "--id",
    "order-42",
    "--json",
  ]);
  assert.equal(code, 0);
  assert.deepEqual(JSON.parse(out), ["order-42"]);
  const task = await new SqliteStorage(temp.db).fetchById("order-42");
  assert.deepEqual(task?.args, [1, 2]);
  assert.equal(task?.priority, 7);
  assert.equal(task?.maxAttempts, 2);
  assert.equal(task?.runAt, Date.UTC(2030, 0, 2, 3, 4, 5));
});

Deno.test("pushCommand.run() schedules the task --delay after its creation", async () => {
  await using temp = await tempDatabase();
  const { code, out } = await run(temp.path, ["push", "email", "{}", "--delay", "10m"]);
  assert.equal(code, 0);
  const task = await new SqliteStorage(temp.db).fetchById(out.trim());
  assert.ok(task);
  assert.equal(task.runAt - task.createdAt, 600_000);
});

Deno.test("pushCommand.run() refuses an existing --id with exit 1", async () => {
  await using temp = await tempDatabase();
  assert.equal((await run(temp.path, ["push", "email", "1", "--id", "x"])).code, 0);
  const { code, out, err } = await run(temp.path, ["push", "email", "2", "--id", "x"]);
  assert.equal(code, 1);
  assert.equal(out, "");
  assert.match(err, /Cannot push task 'x' to queue 'email': a task with this id exists/);
  assert.deepEqual((await new SqliteStorage(temp.db).fetchById("x"))?.args, 1);
});

Deno.test("pushCommand.run() rejects bad usage with exit 2 and writes nothing", async () => {
  await using temp = await tempDatabase();
  await Deno.writeTextFile(`${temp.dir}/ok.ndjson`, ndjson(2));
  const cases: [string[], RegExp][] = [
    [["push", "email", "{to: 1}"], /the JSON payload is not valid JSON/],
    [["push", "email"], /missing the JSON payload/],
    [["push"], /missing QUEUE/],
    [["push", "", "{}"], /queue name must not be empty/],
    [["push", "email", "{}", "--file", `${temp.dir}/ok.ndjson`], /either a JSON payload or --file/],
    [["push", "email", "--file", `${temp.dir}/ok.ndjson`, "--id", "x"], /'--id' names a single/],
    [["push", "email", "{}", "--run-at", "tomorrow"], /'--run-at' must be a date.*'tomorrow'/],
    [["push", "email", "{}", "--delay", "soon"], /'--delay' must be a duration.*'soon'/],
    [["push", "email", "{}", "--delay", "5s", "--run-at", "2030-01-01"], /--delay or --run-at/],
    [["push", "email", "{}", "--priority", "high"], /'--priority' must be a whole number/],
    [
      ["push", "email", "{}", "--max-attempts", "0"],
      /'--max-attempts' must be a whole number >= 1/,
    ],
    [["push", "email", "{}", "--id", ""], /'--id' must not be empty/],
    [["push", "email", "{}", "--bogus"], /Unknown option '--bogus'.*apalis push --help/],
    [["push", "email", "{}", "extra"], /unexpected argument 'extra'/],
    [
      ["push", "email", "--file", `${temp.dir}/missing.ndjson`],
      /Cannot read '.*missing.ndjson': no such file/,
    ],
  ];
  for (const [args, message] of cases) {
    const { code, out, err } = await run(temp.path, args);
    assert.equal(code, 2, args.join(" "));
    assert.equal(out, "", args.join(" "));
    assert.match(err, message, args.join(" "));
    assert.match(err, /^apalis push: /);
  }
  assert.equal((await new SqliteStorage(temp.db).stats()).total, 0);
});

Deno.test("pushCommand.run() creates a missing database, but not on bad input", async () => {
  await using temp = await tempDatabase();
  const path = `${temp.dir}/new.db`;
  assert.equal((await run(path, ["push", "email", "{oops"])).code, 2);
  assert.ok(!existsSync(path));
  const { code, out } = await run(path, ["push", "email", '"hello"']);
  assert.equal(code, 0);
  assert.ok(existsSync(path));
  assert.match(out, /^[0-9A-Z]{26}\n$/);
});

Deno.test("pushCommand.run() pushes every non-empty NDJSON line of --file in order", async () => {
  await using temp = await tempDatabase();
  const file = `${temp.dir}/jobs.ndjson`;
  await Deno.writeTextFile(file, '{"n":1}\r\n\n  \n{"n":2}\n[3]');
  const { code, out, err } = await run(temp.path, ["push", "jobs", "--file", file]);
  assert.equal(err, "");
  assert.equal(code, 0);
  const ids = out.trimEnd().split("\n");
  assert.equal(ids.length, 3);
  const storage = new SqliteStorage(temp.db);
  const args = await Promise.all(ids.map(async (id) => (await storage.fetchById(id))?.args));
  assert.deepEqual(args, [{ n: 1 }, { n: 2 }, [3]]);
});

Deno.test("pushCommand.run() reads NDJSON from stdin with --file - and applies options to all", async () => {
  await using temp = await tempDatabase();
  const { code, out } = await run(
    temp.path,
    ["push", "jobs", "--file", "-", "--priority", "3", "--json"],
    { stdin: ndjson(3) },
  );
  assert.equal(code, 0);
  const ids: string[] = JSON.parse(out);
  assert.equal(ids.length, 3);
  const tasks = await new SqliteStorage(temp.db).listTasks({ queue: "jobs" });
  assert.deepEqual(tasks.map((t) => t.priority), [3, 3, 3]);
  assert.deepEqual(tasks.map((t) => t.id).sort(), [...ids].sort());
});

Deno.test("pushCommand.run() writes nothing when any line is bad, naming line and file", async () => {
  await using temp = await tempDatabase();
  const file = `${temp.dir}/jobs.ndjson`;
  // The bad line comes after the first batch of 1000, so validation must precede every write.
  await Deno.writeTextFile(file, ndjson(2500, { line: 2400, text: '{"n": oops}' }));
  const { code, out, err } = await run(temp.path, ["push", "jobs", "--file", file]);
  assert.equal(code, 2);
  assert.equal(out, "");
  assert.match(err, new RegExp(`^apalis push: line 2400 of ${file} is not valid JSON: `));
  const stdin = await run(temp.path, ["push", "jobs", "-f", "-"], {
    stdin: ndjson(3, { line: 2, text: "{" }),
  });
  assert.equal(stdin.code, 2);
  assert.match(stdin.err, /line 2 of standard input is not valid JSON/);
  assert.equal((await new SqliteStorage(temp.db).stats()).total, 0);
});

Deno.test("pushCommand.run() writes big files in batches with a progress bar only on a terminal", async () => {
  await using temp = await tempDatabase();
  const file = `${temp.dir}/jobs.ndjson`;
  await Deno.writeTextFile(file, ndjson(2500));
  const piped = await run(temp.path, ["push", "jobs", "--file", file]);
  assert.equal(piped.code, 0);
  assert.equal(piped.err, "");
  assert.equal(piped.out.trimEnd().split("\n").length, 2500);
  const tty = await run(temp.path, ["push", "jobs", "--file", file], { isTerminal: true });
  assert.equal(tty.code, 0);
  assert.equal(tty.out.trimEnd().split("\n").length, 2500);
  assert.match(tty.err, /\] 40% 1000\/2500 tasks/);
  assert.match(tty.err, /\[#{30}\] 100% 2500\/2500 tasks\n$/);
  assert.equal(new Set([...piped.out.split("\n"), ...tty.out.split("\n")]).size, 5001);
  assert.equal((await new SqliteStorage(temp.db).stats("jobs")).pending, 5000);
});

Deno.test("pushCommand.run() pushes nothing from an empty file and says so", async () => {
  await using temp = await tempDatabase();
  const { code, out, err } = await run(temp.path, ["push", "jobs", "-f", "-", "--json"], {
    stdin: "\n\n",
  });
  assert.equal(code, 0);
  assert.deepEqual(JSON.parse(out), []);
  assert.equal(err, "apalis push: no tasks in standard input\n");
});
