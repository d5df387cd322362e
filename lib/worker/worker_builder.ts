import { type Backoff, DEFAULT_BACKOFF, validateBackoff } from "../storage/backoff.ts";
import type { Storage } from "../storage/storage.ts";
import type { EventListener } from "./events.ts";
import type { TaskFlow } from "./transition.ts";
import { type Handler, type Middleware, Worker } from "./worker.ts";

/** Retry settings of a worker. */
export interface RetryOptions {
  /** Delay before each retry: exponential options, or a function of attempt and error. */
  backoff?: Backoff;
}

/**
 * Builds a {@linkcode Worker}.
 *
 * @example Usage
 * ```ts
 * import { openDatabase, SqliteStorage, WorkerBuilder } from "@apalis/sqlite";
 *
 * const db = openDatabase(":memory:");
 * SqliteStorage.setup(db);
 * const storage = new SqliteStorage<number>(db, "numbers");
 * await storage.push(41);
 * const worker = new WorkerBuilder("worker-1")
 *   .backend(storage)
 *   .concurrency(4)
 *   .timeout(30_000)
 *   .retry({ backoff: { initialMs: 1000, factor: 2, maxMs: 60_000 } })
 *   .handleSignals(false)
 *   .build(async (n, ctx) => {
 *     ctx.worker.stop();
 *     return n + 1;
 *   });
 * await worker.run();
 * db.close();
 * ```
 */
export class WorkerBuilder<T = unknown> {
  #name: string;
  #storage: Storage<T> | undefined;
  #concurrency = 1;
  #timeoutMs: number | undefined;
  #maxAttempts: number | undefined;
  #backoff: Backoff = DEFAULT_BACKOFF;
  #data = new Map<unknown, unknown>();
  #middleware: Middleware<T>[] = [];
  #listeners: EventListener[] = [];
  #shutdownTimeoutMs = 30_000;
  #handleSignals = true;
  #host: string | undefined;

  /** @param name the worker's name: unique among live workers on the database */
  constructor(name: string) {
    if (typeof name !== "string" || name.length === 0) {
      throw new TypeError(
        `Cannot create WorkerBuilder as 'name' must be a non-empty string: current value is ${
          JSON.stringify(name)
        }`,
      );
    }
    this.#name = name;
  }

  /** The storage (queue) to consume. */
  backend<U>(storage: Storage<U>): WorkerBuilder<U> {
    const self = this as unknown as WorkerBuilder<U>;
    self.#storage = storage;
    return self;
  }

  /** How many handlers may run at once. @default {1} */
  concurrency(n: number): this {
    this.#positive("concurrency", n);
    this.#concurrency = n;
    return this;
  }

  /**
   * Per-attempt time limit in milliseconds (an integer >= 1, of any length: 30 days works): the
   * attempt fails and `ctx.signal` aborts.
   */
  timeout(ms: number): this {
    this.#positive("timeout", ms);
    this.#timeoutMs = ms;
    return this;
  }

  /**
   * Caps the attempts of every task this worker runs: a task is killed once it has used
   * `min(its own maxAttempts, n)` attempts. For workers that must give up sooner than the
   * producers asked (e.g. `apalis work --max-attempts`).
   */
  maxAttempts(n: number): this {
    this.#positive("maxAttempts", n);
    this.#maxAttempts = n;
    return this;
  }

  /** How failed attempts are retried (a task's own backoff wins). */
  retry(options: RetryOptions): this {
    if (options.backoff !== undefined) {
      this.#backoff = typeof options.backoff === "function"
        ? options.backoff
        : validateBackoff(options.backoff, `worker '${this.#name}'`);
    }
    return this;
  }

  /**
   * Registers a value handlers read with `ctx.data(…)`: by its class (`data(client)`, read with
   * `ctx.data(Client)`) or by key (`data("region", "eu")`, read with `ctx.data("region")`).
   */
  data(keyOrValue: unknown, value?: unknown): this {
    if (arguments.length >= 2) {
      this.#data.set(keyOrValue, value);
    } else {
      const owner = (keyOrValue as { constructor?: unknown } | null)?.constructor;
      if (typeof owner !== "function" || owner === Object) {
        throw new TypeError(
          `Cannot register worker data: a plain value needs a key, as in data("name", value)`,
        );
      }
      this.#data.set(owner, keyOrValue);
    }
    return this;
  }

  /** Adds middleware; the first added is the outermost. */
  layer(middleware: Middleware<T>): this {
    this.#middleware.push(middleware);
    return this;
  }

  /** Listens to the worker's events. */
  onEvent(listener: EventListener): this {
    this.#listeners.push(listener);
    return this;
  }

  /**
   * How long a shutdown waits for running handlers before aborting them, in milliseconds (a
   * finite number >= 0, of any length). @default {30000}
   */
  shutdownTimeout(ms: number): this {
    if (!Number.isFinite(ms) || ms < 0) {
      throw new RangeError(
        `Cannot build worker '${this.#name}' as 'shutdownTimeout' must be >= 0: current value is ${ms}`,
      );
    }
    this.#shutdownTimeoutMs = ms;
    return this;
  }

  /** Whether SIGINT and SIGTERM start a graceful shutdown. @default {true} */
  handleSignals(enabled: boolean): this {
    this.#handleSignals = enabled;
    return this;
  }

  /**
   * The host name the worker registers under (`listWorkers()`, the board, `apalis workers`),
   * instead of this machine's (`os.hostname()`): for a container whose host name changes at
   * every start, or a test that stands for another machine.
   *
   * Liveness on PostgreSQL is by heartbeat age alone, so the name changes nothing there. On
   * SQLite a worker of this machine is also dead as soon as its process is gone; a worker
   * registered under another host name is dead only once its heartbeat is older than
   * `reenqueueOrphanedAfter` (its pid means nothing here), so its tasks wait that long after a
   * crash.
   *
   * @example Usage
   * ```ts
   * import { openDatabase, SqliteStorage, WorkerBuilder } from "@apalis/sqlite";
   *
   * const db = openDatabase(":memory:");
   * SqliteStorage.setup(db);
   * const storage = new SqliteStorage<string>(db, "email");
   * await storage.push("ada@example.com");
   * const worker = new WorkerBuilder("mailer-1")
   *   .backend(storage)
   *   .host("mail-node-1")
   *   .handleSignals(false)
   *   .build((to, ctx) => {
   *     ctx.worker.stop();
   *     return `sent to ${to}`;
   *   });
   * await worker.run();
   * const [registered] = await storage.listWorkers();
   * console.log(registered?.host); // "mail-node-1"
   * db.close();
   * ```
   */
  host(name: string): this {
    if (typeof name !== "string" || name.length === 0) {
      throw new TypeError(
        `Cannot build worker '${this.#name}' as 'host' must be a non-empty string: current value is ${
          JSON.stringify(name)
        }`,
      );
    }
    this.#host = name;
    return this;
  }

  /** Returns the worker running `handler`, or the steps of a `Workflow` or `DagFlow`. */
  build(handler: Handler<T> | TaskFlow<T>): Worker<T> {
    if (!this.#storage) {
      throw new TypeError(`Cannot build worker '${this.#name}': call backend(storage) first`);
    }
    if (typeof handler === "object" && handler !== null && "toHandler" in handler) {
      handler = handler.toHandler(this.#storage) as Handler<T>;
    }
    if (typeof handler !== "function") {
      throw new TypeError(`Cannot build worker '${this.#name}': the handler must be a function`);
    }
    return new Worker<T>({
      name: this.#name,
      storage: this.#storage,
      handler,
      concurrency: this.#concurrency,
      timeoutMs: this.#timeoutMs,
      maxAttempts: this.#maxAttempts,
      backoff: this.#backoff,
      data: new Map(this.#data),
      middleware: [...this.#middleware],
      listeners: [...this.#listeners],
      shutdownTimeoutMs: this.#shutdownTimeoutMs,
      handleSignals: this.#handleSignals,
      host: this.#host,
    });
  }

  #positive(field: string, value: number): void {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(
        `Cannot build worker '${this.#name}' as '${field}' must be an integer >= 1: current value is ${value}`,
      );
    }
  }
}
