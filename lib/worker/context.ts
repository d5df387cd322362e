import type { WorkerContext } from "./events.ts";

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
