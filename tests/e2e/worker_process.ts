// deno-lint-ignore-file no-console
/**
 * A worker program for the multi-process end-to-end tests. Runs under `deno run -A` and
 * `bun run` alike, so it only uses `node:` APIs and the library.
 *
 * Every execution of a task inserts a row (task id, worker name, pid, attempt) into the table
 * `runs` of the same database file, then the handler returns (or throws a planned failure).
 *
 * Usage:
 *   worker_process.ts --db PATH --name NAME [--queue default] [--concurrency 1] [--sleep-ms 0]
 *     [--drain] [--fail-first 0] [--backoff-ms 10] [--keep-alive-ms 30000]
 *     [--orphan-after-ms 300000] [--buffer-size 100] [--start-log PATH] [--no-runs]
 *     [--memory-at N,N...]
 *
 * --drain            exit 0 once the queue has no pending, queued, running or failed task left
 * --fail-first N     throw on attempts 1..N of every task (retried after --backoff-ms)
 * --orphan-after-ms  the storage's reenqueueOrphanedAfter (a silent worker's tasks are rescued)
 * --buffer-size      the storage's bufferSize (the most tasks a worker claims ahead)
 * --start-log PATH   append "<task id> <attempt>\n" to PATH (one write) as each handler starts
 * --no-runs          do not record runs: a no-op handler (besides --sleep-ms and --start-log)
 * --memory-at N,N... after the Nth successful task, run the GC if exposed (deno run
 *                    --v8-flags=--expose-gc), then print {"tasks":N,...process.memoryUsage()}
 *                    as a JSON line on stdout
 *
 * SIGTERM/SIGINT stop the worker gracefully, then it exits 0. It prints nothing but --memory-at
 * lines unless something goes wrong (then to stderr, exiting 1 for fatal errors).
 *
 * @module
 */
import { closeSync, openSync, writeSync } from "node:fs";
import process from "node:process";
import { parseArgs } from "node:util";
import { Config, openDatabase, SqliteStorage, WorkerBuilder } from "../../mod.ts";
import { retryBusy } from "../../lib/sqlite/busy.ts";
import { RUNS_DDL, scalar, UNFINISHED_SQL } from "./_runs.ts";

class PlannedFailure extends Error {
  constructor(attempt: number) {
    super(`planned failure of attempt ${attempt}`);
    this.name = "PlannedFailure";
  }
}

function integer(flag: string, value: string | undefined, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) {
    throw new RangeError(`--${flag} must be an integer >= ${min}: current value is ${value}`);
  }
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      db: { type: "string" },
      name: { type: "string" },
      queue: { type: "string", default: "default" },
      concurrency: { type: "string" },
      "sleep-ms": { type: "string" },
      drain: { type: "boolean", default: false },
      "fail-first": { type: "string" },
      "backoff-ms": { type: "string" },
      "keep-alive-ms": { type: "string" },
      "orphan-after-ms": { type: "string" },
      "buffer-size": { type: "string" },
      "start-log": { type: "string" },
      "no-runs": { type: "boolean", default: false },
      "memory-at": { type: "string" },
    },
    strict: true,
  });
  if (!values.db || !values.name) throw new TypeError("--db and --name are required");
  const name = values.name;
  const queue = values.queue;
  const concurrency = integer("concurrency", values.concurrency, 1, 1);
  const sleepMs = integer("sleep-ms", values["sleep-ms"], 0);
  const failFirst = integer("fail-first", values["fail-first"], 0);
  const backoffMs = integer("backoff-ms", values["backoff-ms"], 10);
  const keepAliveMs = integer("keep-alive-ms", values["keep-alive-ms"], 30_000, 1);
  const orphanAfterMs = integer("orphan-after-ms", values["orphan-after-ms"], 300_000, 1);
  const bufferSize = integer("buffer-size", values["buffer-size"], new Config().bufferSize, 1);
  const recordRuns = !values["no-runs"];
  const memoryAt = (values["memory-at"] ?? "").split(",").filter((n) => n !== "").map((n) =>
    integer("memory-at", n, 0, 1)
  );
  const gc = (globalThis as { gc?: () => void }).gc;
  let succeeded = 0;
  // One write(2) per line on an O_APPEND descriptor: a kill -9 cannot leave half a line.
  const startLog = values["start-log"] === undefined
    ? undefined
    : openSync(values["start-log"], "a");

  const db = openDatabase(values.db);
  await retryBusy(db, () => SqliteStorage.setup(db));
  await retryBusy(db, () => db.exec(RUNS_DDL));
  const storage = new SqliteStorage<unknown>(
    db,
    new Config(values.queue).setKeepAlive(keepAliveMs).setReenqueueOrphanedAfter(orphanAfterMs)
      .setBufferSize(bufferSize),
  );

  const worker = new WorkerBuilder(name)
    .backend(storage)
    .concurrency(concurrency)
    .retry({ backoff: { initialMs: backoffMs, factor: 1, jitter: 0 } })
    .shutdownTimeout(5_000)
    .onEvent((_ctx, event) => {
      if (event.type === "success") {
        succeeded++;
        if (memoryAt.includes(succeeded)) {
          gc?.();
          console.log(JSON.stringify({ tasks: succeeded, ...process.memoryUsage() }));
        }
      }
      if (event.type !== "error") return;
      if (event.error instanceof PlannedFailure) return;
      const where = event.task ? `task ${event.task.taskId}` : "worker";
      const error = event.error;
      console.error(
        `worker ${name} (pid ${process.pid}) ${where}: ${
          error instanceof Error ? `${error.name}: ${error.message}` : String(error)
        }`,
      );
    })
    .build(async (_args, ctx) => {
      if (startLog !== undefined) writeSync(startLog, `${ctx.taskId} ${ctx.attempt}\n`);
      if (sleepMs > 0) await new Promise((resolve) => setTimeout(resolve, sleepMs));
      if (recordRuns) {
        await retryBusy(
          db,
          () =>
            db.run("INSERT INTO runs (task_id, worker, pid, attempt) VALUES (?, ?, ?, ?)", [
              ctx.taskId,
              name,
              process.pid,
              ctx.attempt,
            ]),
        );
      }
      if (ctx.attempt <= failFirst) throw new PlannedFailure(ctx.attempt);
      return ctx.attempt;
    });

  let drainTimer: ReturnType<typeof setInterval> | undefined;
  if (values.drain) {
    let checking = false;
    drainTimer = setInterval(async () => {
      if (checking) return;
      checking = true;
      try {
        // Not stats(): counting every done task 20 times a second would dominate long runs.
        const left = await scalar(db, UNFINISHED_SQL, [queue, queue]);
        if (left === 0) {
          clearInterval(drainTimer);
          void worker.stop();
        }
      } catch (error) {
        console.error(`worker ${name} (pid ${process.pid}) drain check: ${error}`);
      } finally {
        checking = false;
      }
    }, 50);
  }
  try {
    await worker.run();
  } finally {
    clearInterval(drainTimer);
    if (startLog !== undefined) closeSync(startLog);
    db.close();
  }
}

try {
  await main();
  process.exit(0);
} catch (error) {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
}
