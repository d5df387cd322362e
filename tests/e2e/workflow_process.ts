// deno-lint-ignore-file no-console
/**
 * A worker program for the workflow crash test: runs a 4-step `Workflow` on numbers,
 * `n → n + 1 → × 2 → + 3 → × 10`. Every execution of a step first inserts a row (run id, step
 * index, task id, pid) into the table `step_runs` of the same database file, then sleeps, then
 * returns the step's output.
 *
 * Usage:
 *   workflow_process.ts --db PATH --name NAME [--queue flow] [--concurrency 1] [--sleep-ms 5]
 *     [--drain]
 *
 * --drain  exit 0 once no run of the queue is still running
 *
 * SIGTERM/SIGINT stop the worker gracefully, then it exits 0. It prints nothing unless something
 * goes wrong (then to stderr, exiting 1 for fatal errors).
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import {
  type Database,
  openDatabase,
  SqliteStorage,
  type TaskContext,
  WorkerBuilder,
  Workflow,
} from "../../mod.ts";
import { retryBusy } from "../../lib/sqlite/busy.ts";

/** The table every step execution is recorded in. */
export const STEP_RUNS_DDL = `CREATE TABLE IF NOT EXISTS step_runs (
  seq     INTEGER PRIMARY KEY,
  run_id  TEXT NOT NULL,
  step    INTEGER NOT NULL,
  task_id TEXT NOT NULL,
  pid     INTEGER NOT NULL
)`;

/** How many steps the workflow has. */
export const STEPS = 4;

/** The run's result for input `n`. */
export function expectedResult(n: number): number {
  return ((n + 1) * 2 + 3) * 10;
}

function integer(flag: string, value: string | undefined, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) {
    throw new RangeError(`--${flag} must be an integer >= ${min}: current value is ${value}`);
  }
  return n;
}

/** The workflow; each step records its execution, then sleeps `sleepMs`. */
function numbers(db: Database, sleepMs: number): Workflow<number, number> {
  const step =
    (index: number, fn: (n: number) => number) => async (n: number, ctx: TaskContext) => {
      await retryBusy(
        db,
        () =>
          db.run("INSERT INTO step_runs (run_id, step, task_id, pid) VALUES (?, ?, ?, ?)", [
            ctx.runId ?? null,
            index,
            ctx.taskId,
            process.pid,
          ]),
      );
      if (sleepMs > 0) await new Promise((resolve) => setTimeout(resolve, sleepMs));
      return fn(n);
    };
  return new Workflow<number>("numbers")
    .andThen(step(0, (n) => n + 1))
    .andThen(step(1, (n) => n * 2))
    .andThen(step(2, (n) => n + 3))
    .andThen(step(3, (n) => n * 10));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      db: { type: "string" },
      name: { type: "string" },
      queue: { type: "string", default: "flow" },
      concurrency: { type: "string" },
      "sleep-ms": { type: "string" },
      drain: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (!values.db || !values.name) throw new TypeError("--db and --name are required");
  const name = values.name;
  const concurrency = integer("concurrency", values.concurrency, 1, 1);
  const sleepMs = integer("sleep-ms", values["sleep-ms"], 5);

  const db = openDatabase(values.db);
  await retryBusy(db, () => SqliteStorage.setup(db));
  await retryBusy(db, () => db.exec(STEP_RUNS_DDL));
  const storage = new SqliteStorage<number>(db, values.queue);

  const worker = new WorkerBuilder(name)
    .backend(storage)
    .concurrency(concurrency)
    .retry({ backoff: { initialMs: 10, factor: 1, jitter: 0 } })
    .shutdownTimeout(5_000)
    .onEvent((_ctx, event) => {
      if (event.type !== "error") return;
      const where = event.task ? `task ${event.task.taskId}` : "worker";
      const error = event.error;
      console.error(
        `worker ${name} (pid ${process.pid}) ${where}: ${
          error instanceof Error ? `${error.name}: ${error.message}` : String(error)
        }`,
      );
    })
    .build(numbers(db, sleepMs));

  let drainTimer: ReturnType<typeof setInterval> | undefined;
  if (values.drain) {
    let checking = false;
    drainTimer = setInterval(async () => {
      if (checking) return;
      checking = true;
      try {
        const running = await retryBusy(db, () =>
          db.get<{ n: number }>(
            "SELECT count(*) AS n FROM apalis_runs WHERE queue = ? AND status = 'running'",
            [storage.queue],
          )!.n);
        if (running === 0) {
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
    db.close();
  }
}

if (import.meta.main) {
  try {
    await main();
    process.exit(0);
  } catch (error) {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  }
}
