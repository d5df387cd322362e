/**
 * `apalis logs` and the progress in `apalis show`, on both backends: a `logs --follow` process
 * prints the lines a worker process logs while its task runs and exits 0 once it has finished.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type TaskLogLine, type TaskRecord, WorkerBuilder } from "../../mod.ts";
import { captureIo, main } from "../../lib/cli/mod.ts";
import { spawnChild, stopChild } from "./_child.ts";
import { backendTest, start, type TestDatabase, waitUntil } from "./_suite.ts";

const CLI = new URL("../../cli.ts", import.meta.url).pathname;

async function cli(db: TestDatabase, args: string[]) {
  const io = captureIo({ env: { APALIS_DB: db.location } });
  const code = await main(args, io);
  return { code, out: io.out, err: io.err };
}

backendTest(
  "apalis logs --follow (a process) prints a worker process's lines as they come and exits 0 when the task is done; show prints its progress",
  async (db) => {
    const dir = await Deno.makeTempDir({ prefix: "apalis_logs_cli_" });
    const release = `${dir}/release`;
    const worker = spawnChild(db.location, "reporter", ["--queue", "logs", "--report", release]);
    try {
      await worker.ready;
      const storage = db.storage<{ n: number }>("logs");
      const id = await storage.push({ n: 3 });
      await waitUntil(async () => (await storage.fetchById(id))?.status === "running", "running");
      const follow = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", CLI, "logs", id, "--follow", "--interval", "50ms", "--json"],
        env: { APALIS_DB: db.location },
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const exited = follow.output();
      let finished = false;
      void exited.then(() => finished = true);
      await waitUntil(async () => (await storage.logs(id)).length === 1, "the first line");
      const shown = await cli(db, ["show", id]);
      assert.equal(shown.code, 0, shown.err);
      assert.match(shown.out, /\n {2}progress {3}\{"step":"half","n":3\} \(attempt 1, \d{4}-/);
      // The task runs on: the follower must still be waiting.
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(finished, false, "logs --follow exited while the task was running");

      await Deno.writeTextFile(release, "");
      const output = await exited;
      const stderr = new TextDecoder().decode(output.stderr);
      assert.equal(output.code, 0, stderr);
      const lines: TaskLogLine[] = new TextDecoder().decode(output.stdout).trim().split("\n")
        .map((line) => JSON.parse(line));
      assert.deepEqual(lines.map((line) => [line.attempt, line.line]), [
        [1, "started n=3"],
        [1, "finishing"],
      ]);
      const json = await cli(db, ["show", id, "--json"]);
      const record: TaskRecord = JSON.parse(json.out);
      assert.equal(record.status, "done");
      assert.equal(record.progress?.value, 100);
      assert.equal(record.progress?.attempt, 1);
      const text = await cli(db, ["show", id]);
      assert.match(text.out, /\n {2}progress {3}100% \(attempt 1, /);
      await stopChild(worker);
    } finally {
      await worker[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

backendTest("apalis logs prints lines with time and attempt; --attempt filters", async (db) => {
  const storage = db.storage<number>("text");
  const id = await storage.push(1);
  const worker = new WorkerBuilder("logger").backend(storage).handleSignals(false)
    .retry({ backoff: { initialMs: 0, factor: 1, jitter: 0 } })
    .build((_n, ctx) => {
      ctx.log(`try ${ctx.attempt}`);
      if (ctx.attempt === 1) throw new Error("again");
    });
  {
    await using _running = start(worker);
    await storage.waitFor(id, { timeoutMs: 20_000 });
  }
  const all = await cli(db, ["logs", id]);
  assert.equal(all.code, 0, all.err);
  assert.match(all.out, /^\d{4}-\d\d-\d\dT[\d:.]+Z #1 try 1\n\d{4}-\d\d-\d\dT[\d:.]+Z #2 try 2\n$/);
  const second = await cli(db, ["logs", id, "--attempt", "2"]);
  assert.match(second.out, /^\d{4}-\d\d-\d\dT[\d:.]+Z try 2\n$/);
  const json = await cli(db, ["logs", id, "--json"]);
  assert.deepEqual(
    json.out.trim().split("\n").map((line) => JSON.parse(line).line),
    ["try 1", "try 2"],
  );
  // A finished task: --follow prints what there is and ends at once.
  const follow = await cli(db, ["logs", id, "--follow"]);
  assert.equal(follow.code, 0);
  assert.equal(follow.out, all.out);
});

backendTest(
  "apalis logs: an unknown id exits 2 (as show and kill do), and so does bad usage",
  async (db) => {
    const missing = await cli(db, ["logs", "no-such-task"]);
    assert.equal(missing.code, 2);
    assert.equal(
      missing.err,
      "apalis logs: Cannot find task 'no-such-task': no task has this id\n",
    );
    const followed = await cli(db, ["logs", "no-such-task", "--follow"]);
    assert.equal(followed.code, 2);
    for (
      const [args, message] of [
        [["logs"], "missing ID"],
        [["logs", "a", "b"], "unexpected argument 'b'"],
        [
          ["logs", "a", "--attempt", "0"],
          "option '--attempt' must be a whole number >= 1: got '0'",
        ],
        [["logs", "a", "--interval", "1s"], "option '--interval' only applies with --follow"],
        [["logs", "a", "--tail"], "Unknown option '--tail'"],
      ] as const
    ) {
      const run = await cli(db, [...args]);
      assert.equal(run.code, 2, `${args.join(" ")}: ${run.err}`);
      assert.ok(run.err.includes(message), `${args.join(" ")}: ${run.err}`);
    }
    const help = await cli(db, ["logs", "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.out, /^Usage: apalis logs ID \[--follow\]/);
  },
);
