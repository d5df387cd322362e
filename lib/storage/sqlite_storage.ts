import { retryBusy } from "../sqlite/busy.ts";
import { toFileError } from "../sqlite/file_error.ts";
import { openDatabase } from "../sqlite/open.ts";
import type { Database, OpenDatabaseOptions } from "../sqlite/types.ts";
import { migrate } from "../store/schema.ts";
import {
  type Batch,
  type NewTaskRow,
  TASK_STATUSES,
  taskCounts,
  taskDelete,
  taskGet,
  taskGetMany,
  taskInsert,
  taskInsertMany,
  taskKill,
  taskList,
  taskOldestPending,
  taskRetry,
  taskRetryAll,
  type TaskStatus,
  taskVacuum,
  type VacuumCursor,
} from "../store/tasks.ts";
import { workerList } from "../store/workers.ts";
import {
  RUN_STATUSES,
  runGet,
  runInsert,
  runList,
  type RunStatus,
  runTasks,
} from "../store/runs.ts";
import { throughputPrune, throughputSince } from "../store/throughput.ts";
import { type Clock, systemClock } from "./clock.ts";
import { type Codec, JsonCodec } from "./codec.ts";
import { Config } from "./config.ts";
import {
  DuplicateTaskError,
  RunNotFoundError,
  TaskNotFoundError,
  TaskStateError,
  WaitTimeoutError,
} from "./errors.ts";
import { describeValue, messageOf } from "./error_text.ts";
import { sleep } from "../time/timers.ts";
import {
  emptyCounts,
  type QueueInfo,
  type RunRecord,
  type RunSummary,
  serializeError,
  type StatusCounts,
  type TaskRecord,
  toRunRecord,
  toRunSummary,
  toTaskRecord,
  toWorkerInfo,
  type WorkerInfo,
} from "./records.ts";
import { type PushOptions, resolvePush, type Task } from "./task.ts";
import { ulid } from "./ulid.ts";
import { toListedRecord } from "./preview.ts";
import type { SharedFetcher } from "./shared.ts";
import { notifyPushed } from "./_wakeup.ts";

/** Options for {@linkcode SqliteStorage}. */
export interface SqliteStorageOptions {
  /** Encodes arguments and results. @default {JsonCodec} */
  codec?: Codec;
  /** Where time comes from. @default {systemClock} */
  clock?: Clock;
  /** @internal Set by `SharedSqliteStorage.makeShared`: the fetcher its workers share. */
  shared?: SharedFetcher;
}

/** Filter and page for {@linkcode SqliteStorage.listTasks}. */
export interface ListTasksOptions {
  /** Only this queue (all queues when absent). */
  queue?: string;
  /** Only this state. */
  status?: TaskStatus;
  /** 1-based page. @default {1} */
  page?: number;
  /** Tasks per page. @default {20} */
  pageSize?: number;
  /**
   * Read at most this many bytes of each task's arguments and result, as stored. A value that
   * fits is decoded as usual; a longer one is left `undefined` and described in the record's
   * `cut` (its size and, for a codec that writes text, its first bytes as text). SQLite cuts
   * the values, so a page of 5 MB payloads costs a few KiB. For listings that show a line per
   * task; `fetchById` reads a task whole. @default {undefined} (whole values)
   */
  previewBytes?: number;
}

/** Options of {@linkcode SqliteStorage.listRuns}. */
export interface ListRunsOptions {
  /** Only this queue (all queues when absent). */
  queue?: string;
  /** Only this state. */
  status?: RunStatus;
  /** 1-based page. @default {1} */
  page?: number;
  /** Runs per page. @default {20} */
  pageSize?: number;
}

/** Outcomes recorded in one minute for one queue, from {@linkcode SqliteStorage.throughput}. */
export interface ThroughputPoint {
  queue: string;
  /** Epoch ms at the start of the minute. */
  minute: number;
  /** Tasks that finished `done`. */
  done: number;
  /** Failed attempts (to be retried). */
  failed: number;
  /** Tasks that ended `killed` (out of attempts, or killed by hand). */
  killed: number;
}

const STREAM_BATCH = 1000;
// Tasks per transaction of vacuum() and retryAll(): about 10 ms of write lock each here.
const VACUUM_BATCH = 5000;
const RETRY_BATCH = 2000;

function assertBatchSize(method: string, batchSize: number): void {
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new RangeError(
      `Cannot ${method} as 'batchSize' must be an integer >= 1: current value is ${batchSize}`,
    );
  }
}

/**
 * A queue in a SQLite file: push tasks, inspect and repair them. Workers consume it
 * (see `WorkerBuilder`). Many storages (queues) can share one {@linkcode Database}.
 *
 * @typeParam T the arguments' type
 * @example Usage
 * ```ts
 * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
 *
 * const db = openDatabase(":memory:");
 * SqliteStorage.setup(db);
 * const emails = new SqliteStorage<{ to: string }>(db, "email");
 * const id = await emails.push({ to: "a@b.c" }, { priority: 1 });
 * const task = await emails.fetchById(id);
 * if (task?.status !== "pending") throw new Error("unexpected");
 * db.close();
 * ```
 */
export class SqliteStorage<T = unknown> {
  /** The connection. */
  readonly db: Database;
  /** Queue name and fetch settings. */
  readonly config: Config;
  /** Encodes arguments and results. */
  readonly codec: Codec;
  /** Where time comes from. */
  readonly clock: Clock;
  /** The fetcher shared with other queues' workers, for a storage of a `SharedSqliteStorage`. */
  readonly shared: SharedFetcher | undefined;

  /**
   * @param db an open database (see `openDatabase`), set up with {@linkcode SqliteStorage.setup}
   * @param queue the queue name (non-empty, no NUL character), or a {@linkcode Config}
   * @param options codec and clock
   */
  constructor(
    db: Database,
    queue: string | Config = "default",
    options: SqliteStorageOptions = {},
  ) {
    this.db = db;
    this.config = queue instanceof Config ? queue : new Config(queue); // checks the name
    this.codec = options.codec ?? JsonCodec;
    this.clock = options.clock ?? systemClock;
    this.shared = options.shared;
  }

  /**
   * Creates or upgrades the queue's tables; idempotent. Returns the schema version. Refuses a
   * database written by a newer version of the library (`SchemaVersionError`).
   */
  static setup(db: Database): number {
    try {
      return migrate(db);
    } catch (error) {
      throw toFileError(db.path, error, "set up the queue tables");
    }
  }

  /**
   * Opens `path` on a new connection and returns a storage on it: the seed's event-driven
   * `new_with_callback`. Every storage wakes its idle workers at once for pushes in this process,
   * and within milliseconds for commits by other processes (a watch on the WAL file and SQLite's
   * `data_version`), so this is the same storage with its own connection. Call
   * `SqliteStorage.setup(storage.db)` before use, and `storage.db.close()` when done.
   *
   * @example Usage
   * ```ts
   * import { Config, IntervalStrategy, SqliteStorage } from "@apalis/sqlite";
   *
   * const config = new Config("queue").withPollInterval(new IntervalStrategy(5000));
   * const backend = SqliteStorage.newWithCallback<number>(":memory:", config);
   * SqliteStorage.setup(backend.db);
   * backend.db.close();
   * ```
   */
  static newWithCallback<T>(
    path: string,
    config: string | Config = "default",
    options: SqliteStorageOptions & OpenDatabaseOptions = {},
  ): SqliteStorage<T> {
    return new SqliteStorage<T>(openDatabase(path, options), config, options);
  }

  /** A storage for `queue` (the seed's `new_in_queue`). */
  static newInQueue<T>(
    db: Database,
    queue: string,
    options?: SqliteStorageOptions,
  ): SqliteStorage<T> {
    return new SqliteStorage<T>(db, queue, options);
  }

  /** The queue name. */
  get queue(): string {
    return this.config.queue;
  }

  /** The same queue with another codec. */
  withCodec(codec: Codec): SqliteStorage<T> {
    const options: SqliteStorageOptions = { codec, clock: this.clock };
    if (this.shared) options.shared = this.shared;
    return new SqliteStorage<T>(this.db, this.config, options);
  }

  /** The same storage for another queue, sharing connection, codec and clock. */
  forQueue<U = unknown>(queue: string): SqliteStorage<U> {
    return new SqliteStorage<U>(this.db, this.config.withQueue(queue), {
      codec: this.codec,
      clock: this.clock,
    });
  }

  /** Enqueues one task; resolves to its id. */
  async push(args: T, options: PushOptions = {}): Promise<string> {
    const row = this.#row(args, options);
    await retryBusy(this.db, () => this.#insert(row), `push task to queue '${this.queue}'`);
    notifyPushed(this.db, this.queue);
    return row.id;
  }

  /** Enqueues a built {@linkcode Task}. */
  pushTask(task: Task<T>): Promise<string> {
    return this.push(task.args, task.options);
  }

  /**
   * Enqueues many tasks in one transaction: all or none. Accepts arrays, iterables and async
   * iterables of {@linkcode Task}s.
   */
  async pushAll(tasks: Iterable<Task<T>> | AsyncIterable<Task<T>>): Promise<string[]> {
    const rows: NewTaskRow[] = [];
    // One time for the whole call: tasks pushed together with one delay fall due together.
    const now = this.clock.now();
    if (Symbol.iterator in tasks) {
      // A plain loop: `for await` over an array costs a promise and a microtask per task.
      for (const task of tasks) rows.push(this.#row(task.args, task.options, now));
    } else {
      for await (const task of tasks) rows.push(this.#row(task.args, task.options, now));
    }
    await this.#insertAll(rows);
    return rows.map((row) => row.id);
  }

  /**
   * Enqueues arguments from a (possibly endless) iterable or async iterable, written in
   * transactions of `batchSize`. A failure stops the stream; batches already written stay.
   */
  async pushStream(
    args: Iterable<T> | AsyncIterable<T>,
    options: PushOptions & { batchSize?: number } = {},
  ): Promise<string[]> {
    const { batchSize = STREAM_BATCH, ...pushOptions } = options;
    const ids: string[] = [];
    let batch: NewTaskRow[] = [];
    for await (const item of args) {
      batch.push(this.#row(item, pushOptions));
      if (batch.length >= batchSize) {
        await this.#insertAll(batch);
        for (const row of batch) ids.push(row.id);
        batch = [];
      }
    }
    await this.#insertAll(batch);
    for (const row of batch) ids.push(row.id);
    return ids;
  }

  /**
   * Enqueues one task synchronously on this connection, so it commits or rolls back with the
   * caller's own transaction. Call it inside `db.transaction(() => …)` (or your own
   * `BEGIN … COMMIT`) on the same `db`.
   *
   * @example Enqueue atomically with your own write
   * ```ts
   * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
   *
   * const db = openDatabase(":memory:");
   * SqliteStorage.setup(db);
   * db.exec("CREATE TABLE users (email TEXT)");
   * const welcome = new SqliteStorage<string>(db, "welcome");
   * db.transaction(() => {
   *   db.run("INSERT INTO users (email) VALUES (?)", ["a@b.c"]);
   *   welcome.pushSync("a@b.c");
   * });
   * db.close();
   * ```
   */
  pushSync(args: T, options: PushOptions = {}): string {
    const row = this.#row(args, options);
    try {
      this.#insert(row);
    } catch (error) {
      throw toFileError(this.db.path, error, `push task to queue '${this.queue}'`);
    }
    notifyPushed(this.db, this.queue);
    return row.id;
  }

  /**
   * Starts a workflow run: records the run and enqueues its first step with `args`, in one
   * transaction. A worker built with a `Workflow` (or a `DagFlow`) on this queue runs it.
   * Resolves to the run's id.
   */
  async pushStart(args: T, options: PushOptions = {}): Promise<string> {
    const row = this.#row(args, options);
    const runId = ulid(row.createdAt);
    row.runId = runId;
    await retryBusy(
      this.db,
      () =>
        this.db.transaction(() => {
          runInsert(this.db, { id: runId, queue: this.queue, now: row.createdAt });
          this.#insert(row);
        }),
      `start a workflow run on queue '${this.queue}'`,
    );
    notifyPushed(this.db, this.queue);
    return runId;
  }

  /**
   * Starts a `DagFlow` run with one input per entry node (in the order the nodes were added).
   * The DAG's worker checks that the count matches its entry nodes.
   */
  startFanOut(argsList: readonly unknown[], options: PushOptions = {}): Promise<string> {
    if (!Array.isArray(argsList)) {
      throw new TypeError(
        `Cannot start a fan-out on queue '${this.queue}': 'argsList' must be an array`,
      );
    }
    return this.pushStart([...argsList] as T, options);
  }

  /** A workflow run with each of its steps' state, attempts and result; `undefined` if unknown. */
  async workflowRun<R = unknown>(runId: string): Promise<RunRecord<R> | undefined> {
    const run = runGet(this.db, runId);
    return run && toRunRecord<R>(run, runTasks(this.db, runId), this.codec);
  }

  /**
   * Resolves when a run has ended (`done` or `failed`). Rejects with `WaitTimeoutError` after
   * `timeoutMs` (default 30 s; `Infinity`: no limit), and with `RunNotFoundError` for an unknown
   * run id. It reads the run every `pollMs` (default 25). Throws a `RangeError` when a duration
   * is not a number >= 0 (`pollMs`: finite and > 0).
   */
  async waitForRun<R = unknown>(
    runId: string,
    options: { timeoutMs?: number; pollMs?: number } = {},
  ): Promise<RunRecord<R>> {
    const { timeoutMs, pollMs } = waitOptions("waitForRun", options);
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const run = runGet(this.db, runId);
      if (!run) throw new RunNotFoundError(runId);
      if (run.status !== "running") {
        return toRunRecord<R>(run, runTasks(this.db, runId), this.codec);
      }
      if (Date.now() >= deadline) throw new WaitTimeoutError([runId], timeoutMs);
      await sleep(Math.min(pollMs, deadline - Date.now()));
    }
  }

  /** Reads one task, or `undefined`. */
  async fetchById(id: string): Promise<TaskRecord<T> | undefined> {
    const row = taskGet(this.db, id);
    return row && toTaskRecord<T>(row, this.codec);
  }

  /**
   * Resolves when every task has finished (`done` or `killed`), with their records in the
   * order of `ids`. Rejects with `WaitTimeoutError` after `timeoutMs` (default 30 s;
   * `Infinity`: no limit), and with `TaskNotFoundError` for an unknown id. It reads the tasks
   * every `pollMs` (default 25). Throws a `RangeError` when a duration is not a number >= 0
   * (`pollMs`: finite and > 0).
   */
  async waitFor(
    ids: string | readonly string[],
    options: { timeoutMs?: number; pollMs?: number } = {},
  ): Promise<TaskRecord<T>[]> {
    const wanted = typeof ids === "string" ? [ids] : [...ids];
    const { timeoutMs, pollMs } = waitOptions("waitFor", options);
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const rows = new Map(taskGetMany(this.db, wanted).map((row) => [row.id, row]));
      const missing = wanted.find((id) => !rows.has(id));
      if (missing !== undefined) throw new TaskNotFoundError(missing);
      const unfinished = wanted.filter((id) => {
        const status = rows.get(id)!.status;
        return status !== "done" && status !== "killed";
      });
      if (unfinished.length === 0) {
        return wanted.map((id) => toTaskRecord<T>(rows.get(id)!, this.codec));
      }
      if (Date.now() >= deadline) throw new WaitTimeoutError(unfinished, timeoutMs);
      await sleep(Math.min(pollMs, deadline - Date.now()));
    }
  }

  /**
   * Lists tasks newest first, filtered by queue and state, one page at a time.
   *
   * @example A page of previews: no payload is read past its first 200 bytes
   * ```ts
   * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
   *
   * const db = openDatabase(":memory:");
   * SqliteStorage.setup(db);
   * const files = new SqliteStorage<{ body: string }>(db, "files");
   * await files.push({ body: "x".repeat(1_000_000) });
   * const [task] = await files.listTasks({ queue: "files", previewBytes: 200 });
   * if (task?.args !== undefined || task?.cut?.args?.bytes !== 1_000_011) {
   *   throw new Error("unexpected");
   * }
   * db.close();
   * ```
   */
  async listTasks(options: ListTasksOptions = {}): Promise<TaskRecord<T>[]> {
    const { page = 1, pageSize = 20, previewBytes } = options;
    assertPage(page, pageSize, "tasks");
    if (options.status !== undefined) assertStatus(options.status);
    if (
      previewBytes !== undefined && !(Number.isSafeInteger(previewBytes) && previewBytes >= 0)
    ) {
      throw new RangeError(
        `Cannot list tasks as 'previewBytes' must be an integer >= 0: current value is ${previewBytes}`,
      );
    }
    const filter: Parameters<typeof taskList>[1] = {
      limit: pageSize,
      offset: (page - 1) * pageSize,
    };
    if (options.queue !== undefined) filter.queue = options.queue;
    if (options.status !== undefined) filter.status = options.status;
    if (previewBytes !== undefined) filter.previewBytes = previewBytes;
    const rows = taskList(this.db, filter);
    return previewBytes === undefined
      ? rows.map((row) => toTaskRecord<T>(row, this.codec))
      : rows.map((row) => toListedRecord<T>(row, this.codec, previewBytes));
  }

  /** Every queue that has tasks or workers, with counts per state. */
  async listQueues(): Promise<QueueInfo[]> {
    const now = this.clock.now();
    const queues = new Map<string, QueueInfo>();
    const entry = (name: string): QueueInfo => {
      let info = queues.get(name);
      if (!info) {
        info = { name, counts: emptyCounts(), oldestDueAt: null, aliveWorkers: 0 };
        queues.set(name, info);
      }
      return info;
    };
    for (const { queue, status, n } of taskCounts(this.db)) {
      const counts = entry(queue).counts;
      counts[status] += n;
      counts.total += n;
    }
    for (const { queue, run_at } of taskOldestPending(this.db, now)) {
      entry(queue).oldestDueAt = run_at;
    }
    for (const worker of this.#workers()) {
      if (worker.alive) entry(worker.queue).aliveWorkers++;
      else entry(worker.queue);
    }
    return [...queues.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Outcomes per queue and minute (`done`, `failed` attempts, `killed`), oldest first, for the
   * last `minutes` (default 60). Minutes without outcomes are left out.
   */
  async throughput(options: { queue?: string; minutes?: number } = {}): Promise<ThroughputPoint[]> {
    const { minutes = 60 } = options;
    if (!Number.isSafeInteger(minutes) || minutes < 1) {
      throw new RangeError(
        `Cannot read throughput as 'minutes' must be an integer >= 1: current value is ${minutes}`,
      );
    }
    const since = this.clock.now() - (minutes - 1) * 60_000;
    return throughputSince(this.db, since, options.queue).map((row) => ({
      queue: row.queue,
      minute: row.minute,
      done: row.done,
      failed: row.failed,
      killed: row.killed,
    }));
  }

  /** Lists workflow runs newest first, filtered by queue and state, one page at a time. */
  async listRuns(options: ListRunsOptions = {}): Promise<RunSummary[]> {
    const { page = 1, pageSize = 20 } = options;
    assertPage(page, pageSize, "runs");
    if (options.status !== undefined && !RUN_STATUSES.includes(options.status)) {
      throw new TypeError(
        `Cannot list runs as 'status' must be one of ${RUN_STATUSES.join(", ")}: current value is ${
          JSON.stringify(options.status)
        }`,
      );
    }
    const filter: Parameters<typeof runList>[1] = {
      limit: pageSize,
      offset: (page - 1) * pageSize,
    };
    if (options.queue !== undefined) filter.queue = options.queue;
    if (options.status !== undefined) filter.status = options.status;
    return runList(this.db, filter).map(toRunSummary);
  }

  /** Registered workers (all, or one queue's), most recently seen first. */
  async listWorkers(queue?: string): Promise<WorkerInfo[]> {
    return this.#workers(queue);
  }

  /** Counts per state, for one queue or all. */
  async stats(queue?: string): Promise<StatusCounts> {
    const counts = emptyCounts();
    for (const { status, n } of taskCounts(this.db, queue)) {
      counts[status] += n;
      counts.total += n;
    }
    return counts;
  }

  /**
   * Runs a finished or waiting task again from a fresh attempt budget. Refuses a task that is
   * `queued` or `running`.
   */
  async retry(id: string): Promise<TaskRecord<T>> {
    const now = this.clock.now();
    const changed = await retryBusy(
      this.db,
      () => taskRetry(this.db, id, now),
      `retry task '${id}'`,
    );
    const row = taskGet(this.db, id);
    if (!row) throw new TaskNotFoundError(id);
    if (!changed) throw new TaskStateError("retry", id, row.status);
    notifyPushed(this.db, row.queue);
    return toTaskRecord<T>(row, this.codec);
  }

  /**
   * Retries every task of a queue in a state (`killed`, `failed` or `done`); returns how many.
   * Like {@linkcode SqliteStorage.vacuum}, it works in transactions of `batchSize` (2,000, about
   * 10 ms each) and lets workers in between, who may start on the first batches before the last
   * is written. A failure part way leaves the batches already retried retried.
   */
  async retryAll(
    options: { queue: string; status: TaskStatus; batchSize?: number },
  ): Promise<number> {
    const { queue, status, batchSize = RETRY_BATCH } = options;
    assertStatus(status);
    assertBatchSize("retryAll", batchSize);
    const now = this.clock.now();
    return await this.#inBatches(
      `retry the ${status} tasks of queue '${queue}'`,
      (after?: string) => taskRetryAll(this.db, { queue, status, now }, batchSize, after),
      (changed) => {
        if (changed > 0) notifyPushed(this.db, queue);
      },
    );
  }

  /**
   * Kills a task that has not finished: it will not run again unless retried. A handler still
   * running it may finish, but its outcome is discarded.
   */
  async kill(id: string, reason = "Killed by request"): Promise<TaskRecord<T>> {
    const now = this.clock.now();
    const error = serializeError(Object.assign(new Error(reason), { name: "KilledError" }));
    const changed = await retryBusy(
      this.db,
      () => taskKill(this.db, id, error, now),
      `kill task '${id}'`,
    );
    const row = taskGet(this.db, id);
    if (!row) throw new TaskNotFoundError(id);
    if (!changed) throw new TaskStateError("kill", id, row.status);
    return toTaskRecord<T>(row, this.codec);
  }

  /** Deletes a task whatever its state; false when there was none. */
  async delete(id: string): Promise<boolean> {
    return await retryBusy(this.db, () => taskDelete(this.db, id), `delete task '${id}'`);
  }

  /**
   * Deletes finished tasks (`done` and `killed`) that finished at least `olderThanMs` ago
   * (default: all of them), and the per-minute outcome counts older than that. Returns how many
   * tasks it deleted.
   *
   * It works through the finished tasks in transactions of `batchSize` (default 5,000, about
   * 10 ms each) and lets the event loop run between them, so that workers in this and other
   * processes keep recording and claiming while millions of rows go. A failure part way leaves
   * the batches already deleted deleted (running it again finishes the job).
   *
   * @example Keep a week of finished tasks
   * ```ts
   * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
   *
   * const db = openDatabase(":memory:");
   * SqliteStorage.setup(db);
   * const storage = new SqliteStorage<string>(db, "emails");
   * const deleted = await storage.vacuum({ olderThanMs: 7 * 24 * 3_600_000 });
   * if (deleted !== 0) throw new Error("nothing had finished yet");
   * db.close();
   * ```
   */
  async vacuum(options: { olderThanMs?: number; batchSize?: number } = {}): Promise<number> {
    const { olderThanMs = 0, batchSize = VACUUM_BATCH } = options;
    if (!Number.isFinite(olderThanMs) || olderThanMs < 0) {
      throw new RangeError(
        `Cannot vacuum as 'olderThanMs' must be >= 0: current value is ${olderThanMs}`,
      );
    }
    assertBatchSize("vacuum", batchSize);
    const before = this.clock.now() - olderThanMs;
    await retryBusy(this.db, () => throughputPrune(this.db, before), "vacuum outcome counts");
    return await this.#inBatches(
      "vacuum finished tasks",
      (after?: VacuumCursor) => taskVacuum(this.db, before, batchSize, after),
    );
  }

  /**
   * Runs `step` in one transaction per batch until it reports no next one, letting this process's
   * timers and I/O (and other processes' writers) in between; returns the sum of what changed.
   */
  async #inBatches<Cursor>(
    action: string,
    step: (after?: Cursor) => Batch<Cursor>,
    afterEach?: (changed: number) => void,
  ): Promise<number> {
    let changed = 0;
    let after: Cursor | undefined;
    while (true) {
      const batch = await retryBusy(this.db, () => this.db.transaction(() => step(after)), action);
      changed += batch.changed;
      afterEach?.(batch.changed);
      if (batch.next === null) return changed;
      after = batch.next;
      // A macrotask, not a microtask: timers and I/O of this process run between batches.
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }

  #workers(queue?: string): WorkerInfo[] {
    const now = this.clock.now();
    return workerList(this.db, queue).map((row) =>
      toWorkerInfo(row, now, this.config.reenqueueOrphanedAfterMs)
    );
  }

  #row(args: T, options: PushOptions, now = this.clock.now()): NewTaskRow & { id: string } {
    const resolved = resolvePush(this.queue, options, now);
    let bytes: Uint8Array | string;
    try {
      // A text codec's text goes to SQLite as it is, which stores its UTF-8 bytes as the blob
      // (the INSERT casts it): no encoding in JavaScript first (pushAll of small objects: +7 %
      // on Deno, +18 % on Bun).
      const { codec } = this;
      bytes = codec.encodeText ? codec.encodeText(args) : codec.encode(args);
    } catch (error) {
      throw new TypeError(
        `Cannot push task to queue '${this.queue}': the ${this.codec.name} codec cannot encode its arguments: ${
          messageOf(error)
        }`,
        { cause: error },
      );
    }
    return {
      id: resolved.id ?? ulid(now),
      queue: this.queue,
      args: bytes,
      maxAttempts: resolved.maxAttempts,
      priority: resolved.priority,
      runAt: resolved.runAt,
      createdAt: now,
      meta: resolved.meta,
      backoff: resolved.backoff,
    };
  }

  #insert(row: NewTaskRow): void {
    try {
      taskInsert(this.db, row);
    } catch (error) {
      throw this.#duplicate(error, row) ?? error;
    }
  }

  async #insertAll(rows: NewTaskRow[]): Promise<void> {
    if (rows.length === 0) return;
    try {
      await retryBusy(
        this.db,
        () => this.db.transaction(() => taskInsertMany(this.db, rows)),
        `push ${rows.length} task${rows.length === 1 ? "" : "s"} to queue '${this.queue}'`,
      );
    } catch (error) {
      if (isConstraintError(error)) {
        const seen = new Set<string>();
        const duplicate = rows.find((row) => seen.size === seen.add(row.id).size) ??
          rows.find((row) => taskGet(this.db, row.id) !== undefined);
        if (duplicate) throw new DuplicateTaskError(duplicate.id, this.queue);
      }
      throw error;
    }
    notifyPushed(this.db, this.queue);
  }

  #duplicate(error: unknown, row: NewTaskRow): DuplicateTaskError | undefined {
    return isConstraintError(error) ? new DuplicateTaskError(row.id, this.queue) : undefined;
  }
}

function isConstraintError(error: unknown): boolean {
  return error instanceof Error && /UNIQUE constraint failed|PRIMARY KEY/i.test(error.message);
}

/** The durations of a wait, checked: `timeoutMs` a number >= 0 (`Infinity`: no limit). */
function waitOptions(
  method: string,
  options: { timeoutMs?: number; pollMs?: number },
): { timeoutMs: number; pollMs: number } {
  const { timeoutMs = 30_000, pollMs = 25 } = options;
  if (typeof timeoutMs !== "number" || !(timeoutMs >= 0)) {
    throw new RangeError(
      `Cannot ${method} as 'timeoutMs' must be a number of milliseconds >= 0 (Infinity: no limit): current value is ${
        describeValue(timeoutMs)
      }`,
    );
  }
  if (typeof pollMs !== "number" || !Number.isFinite(pollMs) || pollMs <= 0) {
    throw new RangeError(
      `Cannot ${method} as 'pollMs' must be a finite number of milliseconds > 0: current value is ${
        describeValue(pollMs)
      }`,
    );
  }
  return { timeoutMs, pollMs };
}

function assertPage(page: number, pageSize: number, what: string): void {
  if (!Number.isSafeInteger(page) || page < 1) {
    throw new RangeError(
      `Cannot list ${what} as 'page' must be an integer >= 1: current value is ${page}`,
    );
  }
  if (!Number.isSafeInteger(pageSize) || pageSize < 1) {
    throw new RangeError(
      `Cannot list ${what} as 'pageSize' must be an integer >= 1: current value is ${pageSize}`,
    );
  }
}

function assertStatus(status: string): asserts status is TaskStatus {
  if (!(TASK_STATUSES as readonly string[]).includes(status)) {
    throw new TypeError(
      `Cannot filter tasks as 'status' must be one of ${
        TASK_STATUSES.join(", ")
      }: current value is ${JSON.stringify(status)}`,
    );
  }
}
