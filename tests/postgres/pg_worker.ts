// deno-lint-ignore-file no-console
/**
 * A worker program on PostgreSQL for the multi-process tests. Runs under `deno run -A` and
 * `bun run` alike (only `node:` APIs and the library).
 *
 * Modes:
 * - `tasks`: every execution inserts a row (task id, worker, pid, attempt, started_ms) into
 *   table `runs` (created by {@linkcode RUNS_DDL}), then the handler returns (or throws a planned
 *   failure with `--fail-first N`).
 * - `dag`: a fan-in DAG: `left(n) = 2n`, `middle(n) = 5n` and `right(n) = 3n` run in any process,
 *   `collector([l, m, r]) = "l/m/r"` depends on the three (three parts: after the first commits
 *   its join, the other two can race to record the last part); each node execution inserts a row
 *   into `dag_node_runs`, the collector also one into `fanin_runs`.
 *
 * Usage:
 *   pg_worker.ts --url URL --name NAME [--mode tasks] [--queue default] [--concurrency 1]
 *     [--sleep-ms 0] [--drain] [--fail-first 0] [--poll-ms 100] [--buffer-size 400]
 *
 * --drain   exit 0 once the queue has nothing waiting or running (`dag`: no run is running);
 *           a check that fails (the server restarting) is tried again
 * It prints `ready` once the worker is idle (registered and listening), and errors to stderr.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { Config, DagFlow, type TaskContext, WorkerBuilder } from "../../mod.ts";
import { connectPostgres, type PostgresConnection, PostgresStorage } from "../../postgres.ts";

/** The table every execution of mode `tasks` is recorded in. */
export const RUNS_DDL = `CREATE TABLE IF NOT EXISTS runs (
  seq        bigserial PRIMARY KEY,
  task_id    text NOT NULL,
  worker     text NOT NULL,
  pid        integer NOT NULL,
  attempt    integer NOT NULL,
  started_ms bigint NOT NULL
)`;

/** The tables of mode `dag`. */
export const DAG_RUNS_DDL = `CREATE TABLE IF NOT EXISTS dag_node_runs (
  seq    bigserial PRIMARY KEY,
  run_id text NOT NULL,
  node   text NOT NULL,
  pid    integer NOT NULL
);
CREATE TABLE IF NOT EXISTS fanin_runs (
  seq    bigserial PRIMARY KEY,
  run_id text NOT NULL,
  pid    integer NOT NULL
)`;

/** The fan-in DAG every `dag` process runs. */
export function faninDag(pg: PostgresConnection, sleepMs: number): DagFlow {
  const record = (ctx: TaskContext, node: string) =>
    pg.sql`INSERT INTO dag_node_runs (run_id, node, pid)
           VALUES (${ctx.runId!}, ${node}, ${process.pid})`;
  const sleep = () => new Promise((resolve) => setTimeout(resolve, sleepMs));
  const dag = new DagFlow("fanin-race");
  const left = dag.addNode("left", async (n: number, ctx: TaskContext) => {
    await sleep();
    await record(ctx, "left");
    return n * 2;
  });
  const middle = dag.addNode("middle", async (n: number, ctx: TaskContext) => {
    await sleep();
    await record(ctx, "middle");
    return n * 5;
  });
  const right = dag.addNode("right", async (n: number, ctx: TaskContext) => {
    await sleep();
    await record(ctx, "right");
    return n * 3;
  });
  dag.addNode("collector", async ([l, m, r]: [number, number, number], ctx: TaskContext) => {
    await record(ctx, "collector");
    await pg.sql`INSERT INTO fanin_runs (run_id, pid) VALUES (${ctx.runId!}, ${process.pid})`;
    return `${l}/${m}/${r}`;
  }).dependsOn([left, middle, right]);
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
      url: { type: "string" },
      name: { type: "string" },
      mode: { type: "string", default: "tasks" },
      queue: { type: "string", default: "default" },
      concurrency: { type: "string" },
      "sleep-ms": { type: "string" },
      drain: { type: "boolean", default: false },
      "fail-first": { type: "string" },
      "poll-ms": { type: "string" },
      "buffer-size": { type: "string" },
    },
    strict: true,
  });
  if (!values.url || !values.name) throw new TypeError("--url and --name are required");
  const name = values.name;
  const dagMode = values.mode === "dag";
  const sleepMs = integer("sleep-ms", values["sleep-ms"], 0);
  const failFirst = integer("fail-first", values["fail-first"], 0);

  const pg = await connectPostgres(values.url, { max: 4 });
  await PostgresStorage.setup(pg);
  let config = new Config(values.queue!)
    .withPollInterval(integer("poll-ms", values["poll-ms"], 100, 1))
    .setKeepAlive(1000)
    .setReenqueueOrphanedAfter(5000);
  if (values["buffer-size"] !== undefined) {
    config = config.setBufferSize(integer("buffer-size", values["buffer-size"], 400, 1));
  }
  const storage = new PostgresStorage<unknown>(pg, config);
  const builder = new WorkerBuilder(name)
    .backend(storage)
    .concurrency(integer("concurrency", values.concurrency, 1, 1))
    .retry({ backoff: { initialMs: 10, factor: 1, jitter: 0 } })
    .shutdownTimeout(5_000)
    .onEvent((_ctx, event) => {
      if (event.type === "idle") console.log("ready");
      if (event.type !== "error") return;
      const where = event.task ? `task ${event.task.taskId}` : "worker";
      const error = event.error;
      console.error(
        `worker ${name} (pid ${process.pid}) ${where}: ${
          error instanceof Error ? `${error.name}: ${error.message}` : String(error)
        }`,
      );
    });
  const worker = dagMode ? builder.build(faninDag(pg, sleepMs)) : builder.build(
    async (_args: unknown, ctx: TaskContext) => {
      await pg.sql`INSERT INTO runs (task_id, worker, pid, attempt, started_ms)
                   VALUES (${ctx.taskId}, ${name}, ${process.pid}, ${ctx.attempt},
                           ${Date.now()}::bigint)`;
      if (sleepMs > 0) await new Promise((resolve) => setTimeout(resolve, sleepMs));
      if (ctx.attempt <= failFirst) throw new Error(`planned failure ${ctx.attempt}`);
      return ctx.attempt;
    },
  );

  let drainTimer: ReturnType<typeof setInterval> | undefined;
  if (values.drain) {
    let checking = false;
    drainTimer = setInterval(async () => {
      if (checking) return;
      checking = true;
      try {
        const [row] = dagMode
          ? await pg.sql<{ n: number }[]>`
              SELECT count(*) AS n FROM apalis_runs
              WHERE queue = ${storage.queue} AND status = 'running'`
          : await pg.sql<{ n: number }[]>`
              SELECT count(*) AS n FROM apalis_tasks
              WHERE queue = ${storage.queue} AND status IN ('pending','failed','queued','running')`;
        if (row!.n === 0) {
          clearInterval(drainTimer);
          void worker.stop();
        }
      } catch {
        // the server may be restarting: check again at the next tick
      } finally {
        checking = false;
      }
    }, 50);
  }
  try {
    await worker.run();
  } finally {
    clearInterval(drainTimer);
    await pg.close();
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
