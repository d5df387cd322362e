// deno-lint-ignore-file no-console
/**
 * End-to-end check of the library under Bun or Node: `bun run tests/e2e/runtime_e2e.ts`, or
 * compiled for Node (`deno task build:npm`) `node dist/node-e2e/tests/e2e/runtime_e2e.js`.
 *
 * 1. An in-process worker drains a queue where some tasks fail once (retried after a small
 *    persisted backoff) and one always fails (killed after its attempts).
 * 2. `bun run tests/e2e/worker_process.ts` works a second queue in a child process on the same
 *    file, is killed with SIGKILL mid-flight, restarts under the same name and drains it.
 *
 * Uses only `node:` APIs (no `Deno.*`), prints one line per check and ends with
 * `bun-e2e: N passed, 0 failed` (`node-e2e` on Node; exit 0), or the failure (exit 1).
 *
 * @module
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  openDatabase,
  SCHEMA_VERSION,
  SqliteStorage,
  Task,
  type TaskRecord,
  WorkerBuilder,
} from "../../mod.ts";
import { serveBoard } from "../../board.ts";
import { assertEnqueued, drainQueue, tempDatabase, TestClock } from "../../testing.ts";
import { waitUntil } from "../_wait.ts";
import { RUNTIME, RUNTIME_LABEL, scriptCommand } from "./_runtime.ts";
import { RUNS_DDL, scalar } from "./_runs.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const WORKER = new URL("./worker_process.ts", import.meta.url);
const PREFIX = `${RUNTIME}-e2e`;
const TIMEOUT_MS = 120_000;

let passed = 0;

/** Runs one named check; the first failure ends the script with exit code 1. */
async function check(name: string, fn: () => unknown): Promise<void> {
  try {
    await fn();
  } catch (error) {
    console.log(`FAIL ${name}`);
    console.log(error instanceof Error ? (error.stack ?? error.message) : String(error));
    console.log(`${PREFIX}: ${passed} passed, 1 failed`);
    process.exit(1);
  }
  passed++;
  console.log(`ok   ${name}`);
}

interface Child {
  process: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

/** Starts `tests/e2e/worker_process.ts` on this runtime with `args`. */
function spawnWorker(args: string[]): Child {
  const [command, start] = scriptCommand(WORKER);
  const child = spawn(command, [...start, ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => stderr += chunk);
  child.stdout!.resume();
  const exited = new Promise<
    { code: number | null; signal: NodeJS.Signals | null; stderr: string }
  >((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stderr }));
  });
  return { process: child, exited };
}

async function exitOf(child: Child, what: string): Promise<
  { code: number | null; signal: NodeJS.Signals | null; stderr: string }
> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), TIMEOUT_MS);
  });
  const first = await Promise.race([child.exited, timedOut]);
  clearTimeout(timer);
  if (first === "timeout") {
    child.process.kill("SIGKILL");
    const late = await child.exited;
    throw new Error(`${what} did not exit within ${TIMEOUT_MS} ms; stderr: ${late.stderr}`);
  }
  return first;
}

const dir = mkdtempSync(join(tmpdir(), "apalis_runtime_e2e_"));
const path = join(dir, "queue.db");
const children: Child[] = [];
process.on("exit", () => {
  for (const child of children) {
    if (child.process.exitCode === null && child.process.signalCode === null) {
      child.process.kill("SIGKILL");
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

console.log(`${PREFIX}: runtime ${RUNTIME_LABEL}, db ${path}`);
const db = openDatabase(path);

await check(`runs under ${RUNTIME === "bun" ? "Bun" : "Node"}`, () => {
  assert.notEqual(RUNTIME, "deno", "run this script with Bun or (compiled) Node");
  console.log(`     driver ${db.driver}`);
});

await check("SqliteStorage.setup() creates the schema", () => {
  SqliteStorage.setup(db);
  db.exec(RUNS_DDL);
  assert.equal(SqliteStorage.setup(db), SCHEMA_VERSION);
});

// ---- 1. In-process worker: push, work, retries -------------------------------------------------
type Job = { n: number; alwaysFail?: boolean };
const inproc = new SqliteStorage<Job>(db, "bun-inproc");
const COUNT = 300;
let ids: string[] = [];
let doomed = "";

await check("SqliteStorage.pushAll() and push() enqueue tasks", async () => {
  ids = await inproc.pushAll(Array.from({ length: COUNT }, (_, n) => Task.builder({ n }).build()));
  doomed = await inproc.push({ n: -1, alwaysFail: true }, {
    maxAttempts: 2,
    backoff: { initialMs: 5, factor: 1, jitter: 0 },
  });
  const counts = await inproc.stats("bun-inproc");
  assert.equal(counts.pending, COUNT + 1);
});

let retries = 0;
let successes = 0;
await check(
  "Worker.run() retries tasks that fail once and kills the one that always fails",
  async () => {
    const worker = new WorkerBuilder("bun-inproc-worker")
      .backend(inproc)
      .concurrency(8)
      .retry({ backoff: { initialMs: 10, factor: 2, jitter: 0 } })
      .handleSignals(false)
      .onEvent((_ctx, event) => {
        if (event.type === "success") successes++;
        if (event.type === "error" && event.status === "failed") retries++;
      })
      .build(async (job, ctx) => {
        await new Promise((resolve) => setTimeout(resolve, 1));
        if (job.alwaysFail) throw new Error(`always fails (attempt ${ctx.attempt})`);
        if (job.n % 3 === 0 && ctx.attempt === 1) throw new Error(`flaky ${job.n}`);
        return job.n * 2;
      });
    const running = worker.run();
    let records: TaskRecord<Job>[];
    try {
      records = await inproc.waitFor([...ids, doomed], { timeoutMs: TIMEOUT_MS });
    } finally {
      await worker.stop();
      await running;
    }
    const byId = new Map(records.map((record) => [record.id, record]));
    for (const [i, id] of ids.entries()) {
      const record = byId.get(id)!;
      assert.equal(record.status, "done", `task ${i}`);
      assert.equal(record.lastResult, i * 2, `result of task ${i}`);
      assert.equal(record.attempts, i % 3 === 0 ? 2 : 1, `attempts of task ${i}`);
    }
    const killed = byId.get(doomed)!;
    assert.equal(killed.status, "killed");
    assert.equal(killed.attempts, 2);
    assert.match(killed.lastError?.message ?? "", /always fails \(attempt 2\)/);
  },
);

await check("Worker events count every success and retry", async () => {
  const flaky = Math.ceil(COUNT / 3);
  assert.equal(successes, COUNT);
  assert.equal(retries, flaky + 1, "failed attempts reported as retries");
  const counts = await inproc.stats("bun-inproc");
  assert.deepEqual(
    { done: counts.done, killed: counts.killed, total: counts.total },
    { done: COUNT, killed: 1, total: COUNT + 1 },
  );
  const workers = await inproc.listWorkers("bun-inproc");
  assert.equal(workers[0]?.name, "bun-inproc-worker");
  assert.notEqual(workers[0]?.stoppedAt, null, "a stopped worker unregisters");
});

// ---- 2. Worker process: kill -9 mid-flight, restart under the same name --------------------------
const QUEUE = "bun-child";
const CHILD_COUNT = 1_000;
const childStorage = new SqliteStorage<{ n: number }>(db, QUEUE);
const workerArgs = [
  "--db",
  path,
  "--name",
  "bun-crashy",
  "--queue",
  QUEUE,
  "--concurrency",
  "8",
  "--fail-first",
  "1",
  "--backoff-ms",
  "5",
];
let inFlightAtKill = 0;

await check("a worker process dies by SIGKILL mid-flight", async () => {
  await childStorage.pushAll(
    Array.from({ length: CHILD_COUNT }, (_, n) => Task.builder({ n }).build()),
  );
  const first = spawnWorker([...workerArgs, "--sleep-ms", "2"]);
  children.push(first);
  await waitUntil(
    async () =>
      (await scalar(db, "SELECT count(*) AS n FROM runs WHERE worker = 'bun-crashy'")) > 300,
    "more than 300 runs by the first 'bun-crashy'",
    TIMEOUT_MS,
  );
  first.process.kill("SIGKILL");
  const exit = await exitOf(first, "first 'bun-crashy'");
  assert.equal(exit.signal, "SIGKILL", `exited with ${exit.code}: ${exit.stderr}`);
  inFlightAtKill = await scalar(
    db,
    `SELECT count(*) AS n FROM apalis_tasks
     WHERE queue = ? AND lock_by = 'bun-crashy' AND status IN ('queued','running')`,
    [QUEUE],
  );
  assert.ok(inFlightAtKill > 0, "the kill should leave tasks running or queued");
  const done = await scalar(
    db,
    "SELECT count(*) AS n FROM apalis_tasks WHERE queue = ? AND status = 'done'",
    [QUEUE],
  );
  assert.ok(done < CHILD_COUNT, "the kill should come before the queue is drained");
  console.log(`     killed with ${inFlightAtKill} tasks in flight or buffered, ${done} done`);
});

await check("a restarted worker process takes its name over and drains the queue", async () => {
  const second = spawnWorker([...workerArgs, "--drain"]);
  children.push(second);
  const exit = await exitOf(second, "restarted 'bun-crashy'");
  assert.equal(exit.code, 0, `exited with ${exit.code} (${exit.signal}): ${exit.stderr}`);
  assert.equal(exit.stderr.trim(), "", "the worker process printed to stderr");
});

await check("every task of the killed worker ends done, each after a retry", async () => {
  const counts = await childStorage.stats(QUEUE);
  assert.deepEqual(
    counts,
    {
      pending: 0,
      queued: 0,
      running: 0,
      done: CHILD_COUNT,
      failed: 0,
      killed: 0,
      total: CHILD_COUNT,
    },
  );
  assert.equal(
    await scalar(
      db,
      "SELECT count(*) AS n FROM apalis_tasks WHERE queue = ? AND attempts < 2",
      [QUEUE],
    ),
    0,
    "every task failed its first attempt and was retried",
  );
  // Attempt 1 always fails by design, so every task succeeded in a run of attempt 2 or later.
  assert.equal(
    await scalar(db, "SELECT count(DISTINCT task_id) AS n FROM runs WHERE attempt >= 2"),
    CHILD_COUNT,
  );
  // Two runs per task, plus at most one more for each attempt the kill cut short.
  const runs = await scalar(db, "SELECT count(*) AS n FROM runs WHERE worker = 'bun-crashy'");
  assert.ok(
    runs <= 2 * CHILD_COUNT + inFlightAtKill,
    `${runs} runs for ${CHILD_COUNT} tasks, ${inFlightAtKill} in flight at the kill`,
  );
  console.log(`     ${runs} runs for ${CHILD_COUNT} tasks (every first attempt fails on purpose)`);
});

await check("serveBoard() serves the dashboard and stops on abort", async () => {
  const stop = new AbortController();
  let port = 0;
  const serving = serveBoard(db, {
    port: 0,
    token: "bun-token",
    signal: stop.signal,
    onListen: (address) => port = address.port,
  });
  await waitUntil(() => port > 0, "the board is listening");
  const base = `http://127.0.0.1:${port}`;
  const refused = await fetch(`${base}/api/overview`);
  assert.equal(refused.status, 401);
  await refused.body?.cancel();
  const overview = await (await fetch(`${base}/api/overview`, {
    headers: { authorization: "Bearer bun-token" },
  })).json();
  assert.ok(overview.queues.some((queue: { name: string }) => queue.name === QUEUE));
  const page = await fetch(`${base}/workers`, { headers: { authorization: "Bearer bun-token" } });
  assert.match(await page.text(), /bun-crashy/);
  // DNS rebinding: a Host that is not a loopback name is refused, even with the token.
  const forged = await rawStatus(port, "rebind.attacker.example", "Bearer bun-token");
  assert.equal(forged, 403);
  assert.equal(await rawStatus(port, `localhost:${port}`, "Bearer bun-token"), 200);
  // Wrong tokens are counted by the client's address: the 6th waits.
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) statuses.push(await rawStatus(port, `localhost:${port}`, "Bearer x"));
  assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429]);
  stop.abort();
  await serving;
  await assert.rejects(fetch(`${base}/api/overview`));
});

/** The status of a GET /api/overview sent over TCP by hand, with `host` as its Host header. */
function rawStatus(port: number, host: string, authorization: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port }, () => {
      socket.write(
        `GET /api/overview HTTP/1.1\r\nHost: ${host}\r\nAuthorization: ${authorization}\r\n` +
          "Connection: close\r\n\r\n",
      );
    });
    let response = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => response += chunk);
    socket.on("error", reject);
    socket.on("end", () => resolve(Number(response.split(" ")[1])));
  });
}

db.close();
await check(
  "the testing helpers: tempDatabase, assertEnqueued, drainQueue with a TestClock",
  async () => {
    const clock = new TestClock();
    let path: string;
    {
      await using temp = await tempDatabase();
      path = temp.path;
      const reminders = temp.storage<{ user: number }>("reminders", { clock });
      await reminders.push({ user: 7 }, { runAfter: 3_600_000 });
      await assertEnqueued(reminders, { args: { user: 7 }, count: 1 });
      assert.equal((await drainQueue(reminders, () => {})).ran, 0, "not due yet");
      const drained = await drainQueue(reminders, () => {}, { withScheduled: true });
      assert.equal(drained.done, 1);
    }
    assert.throws(() => openDatabase(path, { readOnly: true }), "the temp file is gone");
  },
);

console.log(`${PREFIX}: ${passed} passed, 0 failed`);
process.exit(0);
