// deno-lint-ignore-file no-console
/**
 * A worker program for the fan-in race test: runs a DAG with two entry nodes (`left`, `right`)
 * and a fan-in `collector` that depends on both. Several of these processes work the same file
 * so that the two dependencies of one run complete in different processes at nearly the same
 * moment. Runs under `deno run -A` and `bun run` alike (only `node:` APIs and the library).
 *
 * Every node execution inserts a row into `dag_node_runs (run_id, node, pid)`; the collector
 * also inserts one into `fanin_runs (run_id, pid)`, so a collector that ran twice shows as two
 * rows. Results: `left(n) = 2n`, `right(n) = 3n`, `collector([l, r]) = "l/r"`.
 *
 * Usage:
 *   dag_process.ts --db PATH --name NAME [--queue dag] [--concurrency 1] [--sleep-ms 5]
 *
 * It exits 0 once no run of the queue is `running` (start the runs before the processes), or on
 * SIGTERM/SIGINT after a graceful stop. It prints nothing unless something goes wrong (then to
 * stderr, exiting 1 for fatal errors).
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import {
  Config,
  DagFlow,
  type Database,
  openDatabase,
  SqliteStorage,
  type TaskContext,
  WorkerBuilder,
} from "../../mod.ts";
import { retryBusy } from "../../lib/sqlite/busy.ts";

/** The tables the nodes record their executions in. */
export const DAG_RUNS_DDL = `CREATE TABLE IF NOT EXISTS dag_node_runs (
  seq    INTEGER PRIMARY KEY,
  run_id TEXT NOT NULL,
  node   TEXT NOT NULL,
  pid    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS fanin_runs (
  seq    INTEGER PRIMARY KEY,
  run_id TEXT NOT NULL,
  pid    INTEGER NOT NULL
)`;

/** The DAG every process runs. */
export function faninDag(db: Database, sleepMs: number): DagFlow {
  const record = (ctx: TaskContext, node: string) =>
    retryBusy(db, () =>
      db.run("INSERT INTO dag_node_runs (run_id, node, pid) VALUES (?, ?, ?)", [
        ctx.runId!,
        node,
        process.pid,
      ]));
  const sleep = () => new Promise((resolve) => setTimeout(resolve, sleepMs));
  const dag = new DagFlow("fanin-race");
  const left = dag.addNode("left", async (n: number, ctx: TaskContext) => {
    await sleep();
    await record(ctx, "left");
    return n * 2;
  });
  const right = dag.addNode("right", async (n: number, ctx: TaskContext) => {
    await sleep();
    await record(ctx, "right");
    return n * 3;
  });
  dag.addNode("collector", async ([l, r]: [number, number], ctx: TaskContext) => {
    await record(ctx, "collector");
    await retryBusy(
      db,
      () => db.run("INSERT INTO fanin_runs (run_id, pid) VALUES (?, ?)", [ctx.runId!, process.pid]),
    );
    return `${l}/${r}`;
  }).dependsOn([left, right]);
  dag.validate();
  return dag;
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
      queue: { type: "string", default: "dag" },
      concurrency: { type: "string" },
      "sleep-ms": { type: "string" },
    },
    strict: true,
  });
  if (!values.db || !values.name) throw new TypeError("--db and --name are required");
  const name = values.name;
  const concurrency = integer("concurrency", values.concurrency, 1, 1);
  const sleepMs = integer("sleep-ms", values["sleep-ms"], 5);

  const db = openDatabase(values.db);
  await retryBusy(db, () => SqliteStorage.setup(db));
  await retryBusy(db, () => db.exec(DAG_RUNS_DDL));
  // No buffer and a short poll: both processes take the tasks of the same runs as they come.
  const storage = new SqliteStorage<unknown>(
    db,
    new Config(values.queue).setBufferSize(1).withPollInterval(10),
  );

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
    .build(faninDag(db, sleepMs));

  let checking = false;
  const drainTimer = setInterval(async () => {
    if (checking) return;
    checking = true;
    try {
      const running = await retryBusy(
        db,
        () =>
          db.get<{ n: number }>(
            "SELECT count(*) AS n FROM apalis_runs WHERE queue = ? AND status = 'running'",
            [storage.queue],
          )!.n,
      );
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
