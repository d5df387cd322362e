import type { WorkerContext } from "./events.ts";
import type { AttemptReports } from "./reports.ts";
import { encodeProgress, type ProgressValue } from "../storage/reports.ts";

/**
 * What a handler receives beside its arguments.
 *
 * @example Usage
 * ```ts ignore
 * worker.build(async (args, ctx) => {
 *   const res = await fetch(args.url, { signal: ctx.signal });
 *   return { status: res.status, attempt: ctx.attempt };
 * });
 * ```
 */
export class TaskContext {
  /** The task's id. */
  readonly taskId: string;
  /** 1-based number of this attempt. */
  readonly attempt: number;
  /** How many attempts the task may use. */
  readonly maxAttempts: number;
  /** The task's queue. */
  readonly queue: string;
  /** The task's priority. */
  readonly priority: number;
  /** The task's metadata. */
  readonly meta: Readonly<Record<string, unknown>>;
  #signal: () => AbortSignal;
  /** The worker running the task. */
  readonly worker: WorkerContext;
  /** The workflow run the task belongs to, if any. */
  readonly runId: string | undefined;
  /** The task's position in its workflow (JSON written by the workflow layer), if any. */
  readonly step: string | undefined;
  #data: ReadonlyMap<unknown, unknown>;
  #reports: (() => AttemptReports) | undefined;

  /** @param init the context's fields and the worker's data */
  constructor(init: {
    taskId: string;
    attempt: number;
    maxAttempts: number;
    queue: string;
    priority: number;
    meta: Record<string, unknown>;
    /** The attempt's signal, or a function creating it on first use. */
    signal: AbortSignal | (() => AbortSignal);
    worker: WorkerContext;
    data: ReadonlyMap<unknown, unknown>;
    runId?: string | undefined;
    step?: string | undefined;
    /** Where the attempt's progress and log lines go (made on first use); dropped when absent. */
    reports?: (() => AttemptReports) | undefined;
  }) {
    this.taskId = init.taskId;
    this.attempt = init.attempt;
    this.maxAttempts = init.maxAttempts;
    this.queue = init.queue;
    this.priority = init.priority;
    this.meta = init.meta;
    const signal = init.signal;
    this.#signal = typeof signal === "function" ? signal : () => signal;
    this.worker = init.worker;
    this.runId = init.runId;
    this.step = init.step;
    this.#data = init.data;
    this.#reports = init.reports;
  }

  /**
   * Reports how far the attempt got: a number from 0 to 100, or a small JSON object (at most
   * 4 KiB as JSON). Only the latest value is kept in memory and written with the worker's next
   * flush (at the latest about a second later), so calling it in a tight loop costs little. It
   * is read back as `TaskRecord.progress` (`fetchById`, `apalis show`, the dashboard), with the
   * attempt that reported it; it stays after the task finishes, until another attempt reports.
   * A value written after the attempt was killed or rescued is not stored. Throws a `TypeError`
   * naming the problem for anything else (and keeps nothing).
   *
   * @example Report progress
   * ```ts ignore
   * worker.build(async (files: string[], ctx) => {
   *   for (const [i, file] of files.entries()) {
   *     await upload(file);
   *     ctx.progress(Math.round(((i + 1) / files.length) * 100));
   *   }
   *   ctx.progress({ uploaded: files.length, skipped: 0 });
   * });
   * ```
   */
  progress(value: ProgressValue): void {
    if (this.#reports) this.#reports().setProgress(value);
    else encodeProgress(value);
  }

  /**
   * Appends a line to the attempt's log, written with the worker's flushes like `progress`. Read
   * it with `storage.logs(id)`, `apalis logs ID [--follow]` or the dashboard. Each attempt keeps
   * at most 1,000 lines and 64 KiB; a longer line is cut at 4 KiB; past the bounds, lines are
   * dropped and a marker line says so. Throws a `TypeError` when `message` is not a string.
   *
   * @example Log what a handler does
   * ```ts ignore
   * worker.build(async (job: { url: string }, ctx) => {
   *   ctx.log(`fetching ${job.url}`);
   *   const res = await fetch(job.url, { signal: ctx.signal });
   *   ctx.log(`got ${res.status}`);
   * });
   * ```
   */
  log(message: string): void {
    if (this.#reports) this.#reports().log(message);
    else if (typeof message !== "string") {
      throw new TypeError(`ctx.log() takes a string, not ${typeof message}`);
    }
  }

  /**
   * Aborts when the attempt times out (reason: `TaskTimeoutError`), when the worker shuts down
   * (`ShutdownError`), when the task is killed by hand (`KilledError`: at once in the process
   * that killed it, within about a second elsewhere), or when the attempt is no longer this
   * worker's (`AttemptLostError`: rescued as an orphan, retried, deleted). Pass it on to what
   * the handler waits for (`fetch`, child processes): after a kill the worker frees the slot at
   * once and discards whatever the handler returns.
   */
  get signal(): AbortSignal {
    return this.#signal();
  }

  /**
   * Reads a value registered with `WorkerBuilder.data()`: by class (`ctx.data(DbClient)`) or by
   * key (`ctx.data<string>("region")`). Throws when nothing was registered under it.
   */
  // deno-lint-ignore no-explicit-any
  data<V>(key: (abstract new (...args: any[]) => V) | string | symbol): V {
    if (!this.#data.has(key)) {
      const name = typeof key === "function" ? key.name : String(key);
      throw new Error(
        `Cannot read worker data '${name}': nothing was registered under it with WorkerBuilder.data()`,
      );
    }
    return this.#data.get(key) as V;
  }
}
