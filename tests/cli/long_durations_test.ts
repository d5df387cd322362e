/**
 * CLI durations of 30 days: `work --timeout 30d`, `work --shutdown-timeout 30d` (with a task due
 * in 30 days waiting), `stats --watch --interval 30d` and `board --refresh 30d`. Timers of 2^31 ms or more fired at
 * once (an immediate timeout, an immediate interrupt, a table per millisecond) and Bun and Deno
 * printed a TimeoutOverflowWarning each time. In process through `main`, and as real processes
 * (`deno run cli.ts`, and `bun run cli.ts` when bun is on PATH).
 *
 * @module
 */
import assert from "node:assert/strict";
import { SqliteStorage } from "../../mod.ts";
import { captureIo, main } from "../../lib/cli/mod.ts";
import { tempDatabase, waitUntil } from "../_helpers.ts";

const CLI = new URL("../../cli.ts", import.meta.url).pathname;
const PATH = Deno.env.get("PATH");

function hasBun(): boolean {
  try {
    return new Deno.Command("bun", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

const RUNTIMES = [
  { name: "deno", command: Deno.execPath(), args: ["run", "-A", CLI], ignore: false },
  { name: "bun", command: "bun", args: ["run", CLI], ignore: !hasBun() },
];

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

Deno.test("apalis work --timeout 30d lets the command run to its end and --shutdown-timeout 30d lets it finish after Ctrl-C", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage(tmp.db, "jobs");
  const id = await storage.push({ n: 1 }, { maxAttempts: 1 });
  const io = captureIo({ env: { APALIS_DB: tmp.path, PATH } });
  const running = main([
    "work",
    "jobs",
    "--exec",
    "sleep 0.4; echo finished",
    "--timeout",
    "30d",
    "--shutdown-timeout",
    "30d",
  ], io);
  await waitUntil(async () => (await storage.fetchById(id))?.status === "running", "the start");
  io.interrupt(); // Ctrl-C while the command runs: it must still finish
  assert.equal(await running, 0, io.err);
  const task = await storage.fetchById(id);
  assert.equal(task?.status, "done", JSON.stringify(task?.lastError));
  assert.equal(task?.lastResult, "finished");
});

Deno.test("apalis stats --watch --interval 30d prints once and waits", async () => {
  await using tmp = await tempDatabase();
  const io = captureIo({ env: { APALIS_DB: tmp.path } });
  const running = main(["stats", "--watch", "--interval", "30d", "--json"], io);
  await pause(300);
  io.interrupt();
  assert.equal(await running, 0, io.err);
  const lines = io.out.trim().split("\n");
  assert.equal(lines.length, 1, `${lines.length} refreshes in 300 ms`);
});

/** Reads `stream` to its end as text. */
async function text(stream: ReadableStream<Uint8Array>): Promise<string> {
  let out = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) out += chunk;
  return out;
}

for (const runtime of RUNTIMES) {
  const ignored = runtime.ignore ? " (ignored: bun is not on PATH)" : "";
  Deno.test({
    name:
      `${runtime.name} run cli.ts: work --timeout 30d --shutdown-timeout 30d, stats --watch --interval 30d and board --refresh 30d behave and print no TimeoutOverflowWarning${ignored}`,
    ignore: runtime.ignore,
    async fn() {
      await using tmp = await tempDatabase();
      const storage = new SqliteStorage(tmp.db, "jobs");
      const id = await storage.push({ n: 1 }, { maxAttempts: 1 });
      // Due in 30 days: the idle worker's timer for it overflowed and spun, warning each time.
      const later = await storage.push({ n: 2 }, { runAfter: 30 * 86_400_000 });
      const spawn = (args: string[]) =>
        new Deno.Command(runtime.command, {
          args: [...runtime.args, "--db", tmp.path, ...args],
          stdout: "piped",
          stderr: "piped",
        }).spawn();

      const worker = spawn([
        "work",
        "jobs",
        "--exec",
        "sleep 0.3; echo finished",
        "--timeout",
        "30d",
        "--shutdown-timeout",
        "30d",
      ]);
      const workerOut = text(worker.stdout);
      const workerErr = text(worker.stderr);
      await waitUntil(
        async () => (await storage.fetchById(id))?.status === "done",
        "the task to be done",
        20_000,
      );
      await pause(500); // idle, with only the task due in 30 days
      worker.kill("SIGTERM");
      const workerStatus = await worker.status;
      const workerStderr = await workerErr;
      await workerOut;
      assert.equal(workerStatus.code, 0, workerStderr);
      assert.doesNotMatch(workerStderr, /Timeout(Overflow|NaN)Warning/);
      assert.equal((await storage.fetchById(id))?.lastResult, "finished");
      assert.equal((await storage.fetchById(later))?.status, "pending", "it did not run early");

      const stats = spawn(["stats", "--watch", "--interval", "30d", "--json"]);
      const statsOut = text(stats.stdout);
      const statsErr = text(stats.stderr);
      await pause(1500); // startup, then a second of what must be waiting
      stats.kill("SIGINT");
      assert.equal((await stats.status).code, 0);
      const statsStderr = await statsErr;
      assert.doesNotMatch(statsStderr, /Timeout(Overflow|NaN)Warning/);
      const refreshes = (await statsOut).trim().split("\n");
      assert.equal(refreshes.length, 1, `${refreshes.length} refreshes: ${statsStderr}`);

      const board = spawn(["board", "--port", "0", "--refresh", "30d"]);
      const boardErr = text(board.stderr);
      const reader = board.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let banner = "";
      while (!/http:\/\/\S+\//.test(banner)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the board exited: ${banner} ${await boardErr}`);
        banner += value;
      }
      const url = /http:\/\/\S+\//.exec(banner)![0];
      const page = await (await fetch(url)).text();
      assert.match(page, /data-refresh-ms="2592000000"/);
      await pause(300);
      board.kill("SIGINT");
      reader.releaseLock();
      await board.stdout.cancel().catch(() => {});
      assert.equal((await board.status).code, 0);
      assert.doesNotMatch(await boardErr, /Timeout(Overflow|NaN)Warning/);
    },
  });
}
