// deno-lint-ignore-file no-console
/**
 * A worker process for the conformance suite's cross-process tests. It opens a database by its
 * location (a SQLite file path; a `postgres://` URL once PostgreSQL is in the suite: see
 * `openLocation` in `_backends.ts`) and runs one worker on it through the public API only.
 *
 * Usage:
 *   deno run -A tests/backend/worker_child.ts --location LOCATION --name NAME [--queue default]
 *     [--concurrency 1] [--buffer-size 400] [--keep-alive-ms 30000] [--orphan-after-ms 300000]
 *     [--poll-ms 50] [--sleep-ms 0] [--fail-first 0] [--backoff-ms 10] [--record PATH]
 *     [--flow fanin|steps] [--host HOST] [--spans PATH] [--aborts PATH]
 *     [--report RELEASE_PATH]
 *
 * --sleep-ms N     each handler sleeps N ms (keeps tasks in flight when a kill lands)
 * --fail-first N   throw on attempts 1..N of every task (retried after --backoff-ms)
 * --record PATH    append one line per handler start to PATH, in one write(2) on an O_APPEND
 *                  descriptor (a kill -9 cannot leave half a line): see `ExecutionRecord`
 * --flow fanin     run the fan-in DAG instead of a plain handler: entry nodes `left` (2n) and
 *                  `right` (3n), and `collector` ("l/r") that depends on both; start runs with
 *                  `startFanOut([n, n])`
 * --flow steps     run a 4-step Workflow on numbers, n → n + 1 → × 2 → + 3 → × 10 (see
 *                  `stepsResult`); start runs with `pushStart(n)`
 * --host HOST      register under host name HOST instead of this machine's (a process that
 *                  stands for another host: see `WorkerBuilder.host`)
 * --spans PATH     append one line per handler run to PATH when it ends, in one write(2):
 *                  "taskId start end group" (epoch ms; the group is the payload's `group`
 *                  field, `-` for none): see `readSpans` in `_child.ts`
 * --aborts PATH    a task whose payload has `hold: true` waits until its `ctx.signal` aborts,
 *                  then appends "taskId epochMs name message" (the abort reason's) to PATH in
 *                  one write(2) and rejects with the reason: see `readAborts` in `_child.ts`.
 *                  Kills (`KilledError`) are expected then: they are not printed on stderr
 * --report PATH   each handler logs "started n=N", reports progress {"step":"half","n":N}, then
 *                  waits until the file PATH exists, logs "finishing", reports progress 100 and
 *                  returns (progress and logs seen from another process while it runs)
 *
 * Once its worker has registered it prints `ready NAME PID` on stdout. SIGTERM stops the worker
 * gracefully, then it exits 0. Anything that goes wrong goes to stderr (fatal: exit 1).
 *
 * @module
 */
import { closeSync, openSync, writeSync } from "node:fs";
import process from "node:process";
import { parseArgs } from "node:util";
import {
  Config,
  DagFlow,
  KilledError,
  type TaskContext,
  type Worker,
  WorkerBuilder,
  Workflow,
} from "../../mod.ts";
import { openLocation } from "./_backends.ts";

/** The fields of a `--record` line, space-separated, `-` for none. */
export interface ExecutionRecord {
  taskId: string;
  attempt: number;
  worker: string;
  pid: number;
  /** The DAG node (`--flow fanin`) or the step's index (`--flow steps`). */
  node: string | null;
  /** The workflow run, for `--flow`. */
  runId: string | null;
}

/** The result of a `--flow steps` run started with `n`. */
export function stepsResult(n: number): number {
  return ((n + 1) * 2 + 3) * 10;
}

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
      location: { type: "string" },
      name: { type: "string" },
      queue: { type: "string", default: "default" },
      concurrency: { type: "string" },
      "buffer-size": { type: "string" },
      "keep-alive-ms": { type: "string" },
      "orphan-after-ms": { type: "string" },
      "poll-ms": { type: "string" },
      "sleep-ms": { type: "string" },
      "fail-first": { type: "string" },
      "backoff-ms": { type: "string" },
      record: { type: "string" },
      flow: { type: "string" },
      host: { type: "string" },
      spans: { type: "string" },
      aborts: { type: "string" },
      report: { type: "string" },
    },
    strict: true,
  });
  if (!values.location || !values.name) throw new TypeError("--location and --name are required");
  if (values.flow !== undefined && values.flow !== "fanin" && values.flow !== "steps") {
    throw new TypeError(`--flow must be "fanin" or "steps": current value is ${values.flow}`);
  }
  const name = values.name;
  const sleepMs = integer("sleep-ms", values["sleep-ms"], 0);
  const failFirst = integer("fail-first", values["fail-first"], 0);
  const backoffMs = integer("backoff-ms", values["backoff-ms"], 10);
  const config = new Config(values.queue)
    .setBufferSize(integer("buffer-size", values["buffer-size"], new Config().bufferSize, 1))
    .setKeepAlive(integer("keep-alive-ms", values["keep-alive-ms"], 30_000, 1))
    .setReenqueueOrphanedAfter(integer("orphan-after-ms", values["orphan-after-ms"], 300_000, 1))
    .withPollInterval(integer("poll-ms", values["poll-ms"], 50, 1));
  const log = values.record === undefined ? undefined : openSync(values.record, "a");
  const record = (ctx: TaskContext, node: string | null) => {
    if (log === undefined) return;
    const fields = [ctx.taskId, ctx.attempt, name, process.pid, node ?? "-", ctx.runId ?? "-"];
    writeSync(log, `${fields.join(" ")}\n`);
  };
  const spanLog = values.spans === undefined ? undefined : openSync(values.spans, "a");
  const span = (ctx: TaskContext, args: unknown, start: number) => {
    if (spanLog === undefined) return;
    const group = (args as { group?: unknown } | null)?.group;
    const key = typeof group === "string" && group !== "" ? group : "-";
    writeSync(spanLog, `${ctx.taskId} ${start} ${Date.now()} ${key}\n`);
  };
  const abortLog = values.aborts === undefined ? undefined : openSync(values.aborts, "a");
  /** With --aborts, a `hold` task: waits for its signal, records the reason, rejects with it. */
  const hold = (args: unknown, ctx: TaskContext): Promise<never> | undefined => {
    if (abortLog === undefined || (args as { hold?: unknown } | null)?.hold !== true) return;
    return new Promise<never>((_, reject) => {
      const { signal } = ctx;
      const aborted = () => {
        const reason = signal.reason as Error;
        writeSync(abortLog, `${ctx.taskId} ${Date.now()} ${reason.name} ${reason.message}\n`);
        reject(reason);
      };
      if (signal.aborted) aborted();
      else signal.addEventListener("abort", aborted, { once: true });
    });
  };
  const pause = () =>
    sleepMs > 0 ? new Promise((resolve) => setTimeout(resolve, sleepMs)) : Promise.resolve();

  const connection = await openLocation(values.location);
  const storage = connection.storage<unknown>(config);
  let builder = new WorkerBuilder(name)
    .backend(storage)
    .concurrency(integer("concurrency", values.concurrency, 1, 1))
    .retry({ backoff: { initialMs: backoffMs, factor: 1, jitter: 0 } })
    .shutdownTimeout(5_000)
    .onEvent((_ctx, event) => {
      if (event.type === "start") console.log(`ready ${name} ${process.pid}`);
      if (event.type !== "error" || event.error instanceof PlannedFailure) return;
      if (abortLog !== undefined && event.error instanceof KilledError) return;
      const where = event.task ? `task ${event.task.taskId}` : "worker";
      const error = event.error;
      console.error(
        `worker ${name} (pid ${process.pid}) ${where}: ${
          error instanceof Error ? `${error.name}: ${error.message}` : String(error)
        }`,
      );
    });
  if (values.host !== undefined) builder = builder.host(values.host);
  let worker: Worker<unknown>;
  if (values.flow === "fanin") {
    const dag = new DagFlow("fanin-race");
    // Each node records its execution (with its name and run), then sleeps, then computes.
    const node = <I, O>(label: string, fn: (input: I) => O) =>
      dag.addNode(label, async (input: I, ctx: TaskContext) => {
        record(ctx, label);
        await pause();
        return fn(input);
      });
    const left = node("left", (n: number) => n * 2);
    const right = node("right", (n: number) => n * 3);
    node("collector", ([l, r]: [number, number]) => `${l}/${r}`).dependsOn([left, right]);
    dag.validate();
    worker = builder.build(dag);
  } else if (values.flow === "steps") {
    // Each step records its execution (with its index and run), then sleeps, then computes.
    const step =
      (index: number, fn: (n: number) => number) => async (n: number, ctx: TaskContext) => {
        record(ctx, String(index));
        await pause();
        return fn(n);
      };
    const flow = new Workflow<number>("steps")
      .andThen(step(0, (n) => n + 1))
      .andThen(step(1, (n) => n * 2))
      .andThen(step(2, (n) => n + 3))
      .andThen(step(3, (n) => n * 10));
    worker = builder.build(flow as unknown as Workflow<unknown>);
  } else if (values.report !== undefined) {
    const release = values.report;
    worker = builder.build(async (args, ctx) => {
      const n = (args as { n?: unknown } | null)?.n;
      ctx.log(`started n=${n}`);
      ctx.progress({ step: "half", n });
      while (!(await exists(release))) await new Promise((resolve) => setTimeout(resolve, 20));
      ctx.log("finishing");
      ctx.progress(100);
      return n;
    });
  } else {
    worker = builder.build(async (args, ctx) => {
      const start = Date.now();
      record(ctx, null);
      const held = hold(args, ctx);
      if (held) return await held;
      await pause();
      span(ctx, args, start);
      if (ctx.attempt <= failFirst) throw new PlannedFailure(ctx.attempt);
      return ctx.attempt;
    });
  }
  try {
    await worker.run();
  } finally {
    if (log !== undefined) closeSync(log);
    if (spanLog !== undefined) closeSync(spanLog);
    if (abortLog !== undefined) closeSync(abortLog);
    await connection.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
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
