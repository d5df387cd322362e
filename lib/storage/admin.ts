import type { Backend, RunStatus, TaskStatus } from "../backend/types.ts";
import { RUN_STATUSES, TASK_STATUSES } from "../backend/types.ts";
import { sleep } from "../time/timers.ts";
import { type Clock, systemClock } from "./clock.ts";
import { type Codec, JsonCodec } from "./codec.ts";
import { RunNotFoundError, TaskNotFoundError, TaskStateError, WaitTimeoutError } from "./errors.ts";
import { describeValue } from "./error_text.ts";
import { toListedRecord } from "./preview.ts";
import { queueNameProblem } from "./config.ts";
import {
  flowOf,
  limitsOf,
  type QueueFlow,
  type QueueLimitsChange,
  validateLimitsChange,
} from "./limits.ts";
import {
  isMissingSchedulesTable,
  type ListSchedulesOptions,
  type ScheduleInfo,
  toScheduleInfo,
} from "./schedules.ts";
import { type MetricsSnapshot, readMetrics } from "./metrics.ts";
import { type TaskLogLine, toLogLine } from "./reports.ts";
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

/** Options of an {@linkcode Admin} (and of every storage). */
export interface AdminOptions {
  /** Decodes arguments and results. @default {JsonCodec} */
  codec?: Codec;
  /**
   * Where time comes from. On SQLite the default is the system clock; on PostgreSQL, without
   * one, time comes from the database server (hosts with skewed clocks then agree).
   */
  clock?: Clock;
  /** A worker whose heartbeat is older than this is dead (listings). @default {300000} */
  orphanAfterMs?: number;
}

/** Which lines {@linkcode Admin.logs} reads. */
export interface LogsOptions {
  /** Only this attempt's lines (1-based). */
  attempt?: number;
  /** Only lines after this `seq` (the last line seen, to follow a log). */
  after?: number;
  /** At most this many lines (1 to 10,000). @default {1000} */
  limit?: number;
  /** Read the last `limit` lines instead of the first ones (still oldest first). */
  last?: boolean;
}

/** Filter and page for {@linkcode Admin.listTasks}. */
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
   * `cut` (its size and, for a codec that writes text, its first bytes as text). The database
   * cuts the values, so a page of 5 MB payloads costs a few KiB. For listings that show a line
   * per task; `fetchById` reads a task whole. @default {undefined} (whole values)
   */
  previewBytes?: number;
}

/** Options of {@linkcode Admin.listRuns}. */
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

/** Outcomes recorded in one minute for one queue, from {@linkcode Admin.throughput}. */
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

// Tasks per transaction of vacuum() and retryAll(): about 10 ms of write lock each here.
const VACUUM_BATCH = 5000;
const RETRY_BATCH = 2000;
const DEFAULT_ORPHAN_AFTER_MS = 5 * 60_000;

/**
 * What a database holds, across its queues: tasks, queues, workers, workflow runs, counts and
 * throughput; and the repairs an operator makes (retry, kill, delete, vacuum). The dashboard
 * and the CLI work through one; every storage is one too, for its database.
 *
 * @typeParam T the arguments' type of the tasks it reads (`unknown` across queues)
 * @example Usage
 * ```ts
 * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
 *
 * const db = openDatabase(":memory:");
 * SqliteStorage.setup(db);
 * await new SqliteStorage(db, "email").push({ to: "a@b.c" });
 * const admin = SqliteStorage.admin(db);
 * const [queue] = await admin.listQueues();
 * if (queue?.counts.pending !== 1) throw new Error("unexpected");
 * db.close();
 * ```
 */
export class Admin<T = unknown> {
  /** The database's backend. */
  readonly backend: Backend;
  /** Encodes arguments and results. */
  readonly codec: Codec;
  /** Where time comes from. */
  readonly clock: Clock;
  /** Whether times come from the database (PostgreSQL without a clock) rather than `clock`. */
  readonly databaseTime: boolean;
  readonly #orphanAfterMs: number;

  /**
   * @param backend the database
   * @param options codec, clock and the heartbeat age of a dead worker
   */
  constructor(backend: Backend, options: AdminOptions = {}) {
    this.backend = backend;
    this.codec = options.codec ?? JsonCodec;
    this.clock = options.clock ?? systemClock;
    this.databaseTime = backend.engine !== "sqlite" && options.clock === undefined;
    this.#orphanAfterMs = options.orphanAfterMs ?? DEFAULT_ORPHAN_AFTER_MS;
  }

  /** The time to pass to the backend: the clock's, or undefined for the database's own. */
  protected timeForDatabase(): number | undefined {
    return this.databaseTime ? undefined : this.clock.now();
  }

  /** The current time: the clock's, or the database's. */
  protected async currentTime(): Promise<number> {
    return this.databaseTime ? await this.backend.timeNow() : this.clock.now();
  }

  /** Reads one task, or `undefined`. */
  async fetchById(id: string): Promise<TaskRecord<T> | undefined> {
    const row = await this.backend.taskGet(id);
    return row && toTaskRecord<T>(row, this.codec);
  }

  /**
   * Reads the lines a task's handler logged with `ctx.log` (and `work --exec` commands wrote to
   * stderr), oldest first; `[]` for a task without lines or that does not exist. Each attempt
   * keeps at most 1,000 lines and 64 KiB (each line cut at 4 KiB), and a marker line says when
   * lines were dropped. Lines are written with the worker's flushes, within about a second of
   * `ctx.log`, and are deleted with their task. Throws a `RangeError` for a bad option.
   *
   * @example Follow a task's log
   * ```ts
   * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
   *
   * const db = openDatabase(":memory:");
   * SqliteStorage.setup(db);
   * const storage = new SqliteStorage(db, "reports");
   * const id = await storage.push({ month: "2026-11" });
   * let after = 0;
   * for (const line of await storage.logs(id, { after })) {
   *   console.log(`attempt ${line.attempt}: ${line.line}`);
   *   after = line.seq;
   * }
   * db.close();
   * ```
   */
  async logs(id: string, options: LogsOptions = {}): Promise<TaskLogLine[]> {
    const { attempt, after, limit = 1000, last } = options;
    if (attempt !== undefined && !(Number.isSafeInteger(attempt) && attempt >= 1)) {
      throw new RangeError(
        `logs: 'attempt' must be an integer >= 1, not ${describeValue(attempt)}`,
      );
    }
    if (after !== undefined && !(Number.isSafeInteger(after) && after >= 0)) {
      throw new RangeError(`logs: 'after' must be an integer >= 0, not ${describeValue(after)}`);
    }
    if (!(Number.isSafeInteger(limit) && limit >= 1 && limit <= 10_000)) {
      throw new RangeError(
        `logs: 'limit' must be an integer from 1 to 10000, not ${describeValue(limit)}`,
      );
    }
    const filter: Parameters<Backend["taskLogs"]>[1] = { limit };
    if (attempt !== undefined) filter.attempt = attempt;
    if (after !== undefined) filter.after = after;
    if (last) filter.last = true;
    return (await this.backend.taskLogs(id, filter)).map(toLogLine);
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
      const rows = new Map((await this.backend.taskGetMany(wanted)).map((row) => [row.id, row]));
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

  /** A workflow run with each of its steps' state, attempts and result; `undefined` if unknown. */
  async workflowRun<R = unknown>(runId: string): Promise<RunRecord<R> | undefined> {
    const run = await this.backend.runGet(runId);
    return run && toRunRecord<R>(run, await this.backend.runTasks(runId), this.codec);
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
      const run = await this.backend.runGet(runId);
      if (!run) throw new RunNotFoundError(runId);
      if (run.status !== "running") {
        return toRunRecord<R>(run, await this.backend.runTasks(runId), this.codec);
      }
      if (Date.now() >= deadline) throw new WaitTimeoutError([runId], timeoutMs);
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
    const filter: Parameters<Backend["taskList"]>[0] = {
      limit: pageSize,
      offset: (page - 1) * pageSize,
    };
    if (options.queue !== undefined) filter.queue = options.queue;
    if (options.status !== undefined) filter.status = options.status;
    if (previewBytes !== undefined) filter.previewBytes = previewBytes;
    const rows = await this.backend.taskList(filter);
    return previewBytes === undefined
      ? rows.map((row) => toTaskRecord<T>(row, this.codec))
      : rows.map((row) => toListedRecord<T>(row, this.codec, previewBytes));
  }

  /** Every queue that has tasks or workers, with counts per state. */
  async listQueues(): Promise<QueueInfo[]> {
    const queues = new Map<string, QueueInfo>();
    const entry = (name: string): QueueInfo => {
      let info = queues.get(name);
      if (!info) {
        info = {
          name,
          counts: emptyCounts(),
          oldestDueAt: null,
          aliveWorkers: 0,
          paused: false,
          limits: {},
        };
        queues.set(name, info);
      }
      return info;
    };
    for (const { queue, status, n } of await this.backend.taskCounts()) {
      const counts = entry(queue).counts;
      counts[status] += n;
      counts.total += n;
    }
    for (const { queue, run_at } of await this.backend.taskOldestDue(this.timeForDatabase())) {
      entry(queue).oldestDueAt = run_at;
    }
    for (const worker of await this.listWorkers()) {
      if (worker.alive) entry(worker.queue).aliveWorkers++;
      else entry(worker.queue);
    }
    for (const row of await this.backend.queueSettingsList()) {
      const info = entry(row.queue);
      info.paused = row.paused;
      info.limits = limitsOf(row);
    }
    return [...queues.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Pauses a queue: no worker, in any process or on any host, starts a task of it until
   * {@linkcode Admin.resumeQueue}; tasks already running finish, and pushes still succeed.
   * Workers honour it within a second. Persisted; resolves to the queue's flow control.
   *
   * @example Pause, then resume
   * ```ts
   * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
   *
   * const db = openDatabase(":memory:");
   * SqliteStorage.setup(db);
   * const admin = SqliteStorage.admin(db);
   * await admin.pauseQueue("email");
   * if (!(await admin.queueFlow("email")).paused) throw new Error("unexpected");
   * await admin.resumeQueue("email");
   * db.close();
   * ```
   */
  async pauseQueue(queue: string): Promise<QueueFlow> {
    assertQueueName("pause", queue);
    return flowOf(await this.backend.queueSetPaused(queue, true, this.timeForDatabase()));
  }

  /** Resumes a paused queue: idle workers wake and claim at once. Resolves to its flow control. */
  async resumeQueue(queue: string): Promise<QueueFlow> {
    assertQueueName("resume", queue);
    return flowOf(await this.backend.queueSetPaused(queue, false, this.timeForDatabase()));
  }

  /**
   * Changes a queue's limits, enforced by the database across every worker, process and host
   * (see {@linkcode QueueLimits}): a field given sets that limit, `null` removes it, and a field
   * left out stays as it is. Running workers apply the change within a second. Throws a
   * `TypeError` or `RangeError` naming the field for a value that is not a whole number >= 1,
   * writing nothing. Resolves to the queue's flow control.
   *
   * @example At most 100 starts a second, 5 at once, 1 at a time per group
   * ```ts
   * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
   *
   * const db = openDatabase(":memory:");
   * SqliteStorage.setup(db);
   * const admin = SqliteStorage.admin(db);
   * await admin.setQueueLimits("email", {
   *   rate: { limit: 100, perMs: 1_000 },
   *   concurrency: 5,
   *   groupConcurrency: 1,
   * });
   * const { limits } = await admin.setQueueLimits("email", { concurrency: null });
   * if (limits.concurrency !== undefined || limits.rate?.limit !== 100) throw new Error("unexpected");
   * db.close();
   * ```
   */
  async setQueueLimits(queue: string, limits: QueueLimitsChange): Promise<QueueFlow> {
    assertQueueName("set the limits of", queue);
    const change = validateLimitsChange(queue, limits);
    return flowOf(await this.backend.queueSetLimits(queue, change, this.timeForDatabase()));
  }

  /** Removes every limit of a queue (a pause stays). Resolves to its flow control. */
  clearQueueLimits(queue: string): Promise<QueueFlow> {
    return this.setQueueLimits(queue, { rate: null, concurrency: null, groupConcurrency: null });
  }

  /** A queue's flow control: whether it is paused, and its limits. */
  async queueFlow(queue: string): Promise<QueueFlow> {
    assertQueueName("read the settings of", queue);
    return flowOf(await this.backend.queueSettingsGet(queue));
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
    const since = (await this.currentTime()) - (minutes - 1) * 60_000;
    return (await this.backend.throughputSince(since, options.queue)).map((row) => ({
      queue: row.queue,
      minute: row.minute,
      done: row.done,
      failed: row.failed,
      killed: row.killed,
    }));
  }

  /**
   * Every queue's metrics, as `/metrics` on the dashboard reports them (see `renderMetrics`):
   * tasks per state, whether it is paused, workers alive, how long its oldest due task has
   * waited, outcome counts since the database was set up (these never decrease: minutes that
   * vacuum deletes from the throughput table are kept as totals), and run and wait times of its
   * newest done tasks (at most `METRICS_SAMPLE` = 1000, newest by id) in buckets of 5 ms to 1 h.
   * Reads only; costs a count of each queue's tasks (as `listQueues`) plus at most 1000 index
   * entries and rows per queue.
   *
   * @example Usage
   * ```ts
   * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
   *
   * const db = openDatabase(":memory:");
   * SqliteStorage.setup(db);
   * await new SqliteStorage(db, "email").push({ to: "a@b.c" });
   * const { queues: [email] } = await SqliteStorage.admin(db).metrics();
   * if (email?.counts.pending !== 1 || email.outcomes.done !== 0) throw new Error("unexpected");
   * db.close();
   * ```
   */
  async metrics(): Promise<MetricsSnapshot> {
    const queues = await this.listQueues();
    return await readMetrics(this.backend, queues, await this.currentTime());
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
    const filter: Parameters<Backend["runList"]>[0] = {
      limit: pageSize,
      offset: (page - 1) * pageSize,
    };
    if (options.queue !== undefined) filter.queue = options.queue;
    if (options.status !== undefined) filter.status = options.status;
    return (await this.backend.runList(filter)).map(toRunSummary);
  }

  /**
   * The cron schedules of every queue (or of `queue`), by name, each with its next ticks
   * (`upcoming`, 3 by default) and the last task it enqueued. None on a database whose schema
   * predates schedules (read without upgrading it).
   *
   * @example Usage
   * ```ts
   * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
   *
   * const db = openDatabase(":memory:");
   * SqliteStorage.setup(db);
   * await new SqliteStorage(db, "reports").schedule("nightly", "0 3 * * *", { full: true });
   * const [nightly] = await SqliteStorage.admin(db).listSchedules();
   * if (nightly?.upcoming.length !== 3) throw new Error("unexpected");
   * db.close();
   * ```
   */
  async listSchedules(options: ListSchedulesOptions = {}): Promise<ScheduleInfo<T>[]> {
    const { upcoming = 3 } = options;
    if (!Number.isSafeInteger(upcoming) || upcoming < 0 || upcoming > 1000) {
      throw new RangeError(
        `Cannot list schedules as 'upcoming' must be an integer from 0 to 1000: current value is ${
          describeValue(upcoming)
        }`,
      );
    }
    let rows: Awaited<ReturnType<Backend["scheduleList"]>>;
    try {
      rows = await this.backend.scheduleList(options.queue);
    } catch (error) {
      // A schema from before schedules (read without upgrading it, as the CLI and the board
      // do) has none.
      if (isMissingSchedulesTable(error)) return [];
      throw error;
    }
    return rows.map((row) => toScheduleInfo<T>(row, this.codec, upcoming));
  }

  /** Registered workers (all, or one queue's), most recently seen first. */
  async listWorkers(queue?: string): Promise<WorkerInfo[]> {
    const rows = await this.backend.workerList(
      queue,
      this.orphanAfterMs,
      this.timeForDatabase(),
    );
    return rows.map(toWorkerInfo);
  }

  /** How old a worker's heartbeat may be before it counts as dead. */
  protected get orphanAfterMs(): number {
    return this.#orphanAfterMs;
  }

  /** Counts per state, for one queue or all. */
  async stats(queue?: string): Promise<StatusCounts> {
    const counts = emptyCounts();
    for (const { status, n } of await this.backend.taskCounts(queue)) {
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
    const changed = await this.backend.taskRetry(id, this.timeForDatabase());
    const row = await this.backend.taskGet(id);
    if (!row) throw new TaskNotFoundError(id);
    if (!changed) throw new TaskStateError("retry", id, row.status);
    this.backend.notifyPushed(row.queue);
    return toTaskRecord<T>(row, this.codec);
  }

  /**
   * Retries every task of a queue in a state (`killed`, `failed` or `done`); returns how many.
   * Like {@linkcode Admin.vacuum}, it works in transactions of `batchSize` (2,000, about 10 ms
   * each on SQLite) and lets workers in between, who may start on the first batches before the
   * last is written. A failure part way leaves the batches already retried retried.
   */
  async retryAll(
    options: { queue: string; status: TaskStatus; batchSize?: number },
  ): Promise<number> {
    const { queue, status, batchSize = RETRY_BATCH } = options;
    assertStatus(status);
    assertBatchSize("retryAll", batchSize);
    const filter: { queue: string; status: TaskStatus; now?: number } = { queue, status };
    const now = this.timeForDatabase();
    if (now !== undefined) filter.now = now;
    return await this.backend.taskRetryAll(filter, batchSize);
  }

  /**
   * Kills a task that has not finished: it will not run again unless retried. Its stored error
   * is `{ name: "KilledError", message: reason }`. If a handler is running it, its `ctx.signal`
   * aborts with a `KilledError` naming the task and the reason: at once in this
   * process, within about a second in another process or on another host (its worker checks
   * every 500 ms which of its running attempts are still its own). The worker frees the slot at
   * once, and whatever the handler still returns is discarded. `apalis kill` and the
   * dashboard's kill button call this.
   *
   * @example Usage
   * ```ts ignore
   * const task = await storage.kill(id, "customer cancelled");
   * console.log(task.status); // "killed"
   * ```
   */
  async kill(id: string, reason = "Killed by request"): Promise<TaskRecord<T>> {
    const error = serializeError(Object.assign(new Error(reason), { name: "KilledError" }));
    const changed = await this.backend.taskKill(id, error, this.timeForDatabase());
    // Committed: this process's workers abort the handler now (others find out by their check).
    if (changed) this.backend.notifyKilled({ id, reason });
    const row = await this.backend.taskGet(id);
    if (!row) throw new TaskNotFoundError(id);
    if (!changed) throw new TaskStateError("kill", id, row.status);
    return toTaskRecord<T>(row, this.codec);
  }

  /** Deletes a task whatever its state; false when there was none. */
  async delete(id: string): Promise<boolean> {
    return await this.backend.taskDelete(id);
  }

  /**
   * Deletes finished tasks (`done` and `killed`) that finished at least `olderThanMs` ago
   * (default: all of them), and the per-minute outcome counts older than that. Returns how many
   * tasks it deleted. The tasks of a workflow run go only with the run, whole (the run, its
   * tasks and its joins), once it has finished that long ago and so have all its tasks; as the
   * queue's retention (see `Config.setRetention`) deletes them.
   *
   * It works through the finished tasks in transactions of `batchSize` (default 5,000, about
   * 10 ms each on SQLite) and lets the event loop run between them, so that workers in this and
   * other processes keep recording and claiming while millions of rows go. A failure part way
   * leaves the batches already deleted deleted (running it again finishes the job).
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
    const before = (await this.currentTime()) - olderThanMs;
    return await this.backend.taskVacuum(before, batchSize);
  }
}

function assertQueueName(action: string, queue: string): void {
  const problem = queueNameProblem(queue);
  if (problem !== undefined) throw new TypeError(`Cannot ${action} queue as 'queue' ${problem}`);
}

function assertBatchSize(method: string, batchSize: number): void {
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new RangeError(
      `Cannot ${method} as 'batchSize' must be an integer >= 1: current value is ${batchSize}`,
    );
  }
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
