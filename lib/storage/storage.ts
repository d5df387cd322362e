import type { InsertOutcome, NewTaskRow } from "../backend/types.ts";
import { Admin, type AdminOptions } from "./admin.ts";
import type { Codec } from "./codec.ts";
import { Config } from "./config.ts";
import { DuplicateTaskError, ScheduleNameTakenError } from "./errors.ts";
import { messageOf } from "./error_text.ts";
import type { SharedFetcher } from "./shared.ts";
import {
  enqueueDue,
  type ListSchedulesOptions,
  type ScheduleInfo,
  type ScheduleOptions,
  scheduleRow,
} from "./schedules.ts";
import { type PushOptions, resolvePush, type Task } from "./task.ts";
import { ulid } from "./ulid.ts";
import { argsKey, type PushResult } from "./unique.ts";
import type { QueueFlow, QueueLimits, QueueLimitsChange } from "./limits.ts";

/** Options of a storage. */
export interface StorageOptions extends Omit<AdminOptions, "orphanAfterMs"> {
  /** @internal Set by `SharedSqliteStorage.makeShared`: the fetcher its workers share. */
  shared?: SharedFetcher;
}

const STREAM_BATCH = 1000;

/**
 * A queue on a database, whatever the engine: push tasks, start workflow runs, and (as an
 * {@linkcode Admin} of its database) inspect and repair them. Workers consume it (see
 * `WorkerBuilder`). `SqliteStorage` and `PostgresStorage` are the two kinds.
 *
 * @typeParam T the arguments' type
 */
export abstract class Storage<T = unknown> extends Admin<T> {
  /** Queue name and fetch settings. */
  readonly config: Config;
  /** The fetcher shared with other queues' workers, for a storage of a shared storage. */
  readonly shared: SharedFetcher | undefined;

  /**
   * @param backend the database
   * @param queue the queue name (non-empty, no NUL character), or a {@linkcode Config}
   * @param options codec and clock
   */
  constructor(
    backend: Admin["backend"],
    queue: string | Config = "default",
    options: StorageOptions = {},
  ) {
    const config = queue instanceof Config ? queue : new Config(queue); // checks the name
    const adminOptions: AdminOptions = { orphanAfterMs: config.reenqueueOrphanedAfterMs };
    if (options.codec) adminOptions.codec = options.codec;
    if (options.clock) adminOptions.clock = options.clock;
    super(backend, adminOptions);
    this.config = config;
    this.shared = options.shared;
  }

  /** The queue name. */
  get queue(): string {
    return this.config.queue;
  }

  /**
   * The time a worker of this storage passes to the database: its clock's, or `undefined` when
   * time comes from the database.
   */
  databaseNow(): number | undefined {
    return this.timeForDatabase();
  }

  /** The same queue with another codec. */
  abstract withCodec(codec: Codec): Storage<T>;

  /** The same storage for another queue, sharing connection, codec and clock. */
  abstract forQueue<U = unknown>(queue: string): Storage<U>;

  /**
   * Pauses this queue everywhere (see {@linkcode Admin.pauseQueue}).
   *
   * @example Pushes succeed while paused; nothing starts until resumed
   * ```ts
   * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
   *
   * const db = openDatabase(":memory:");
   * SqliteStorage.setup(db);
   * const email = new SqliteStorage<{ to: string }>(db, "email");
   * await email.pause();
   * await email.push({ to: "a@b.c" });
   * await email.resume();
   * db.close();
   * ```
   */
  pause(): Promise<QueueFlow> {
    return this.pauseQueue(this.queue);
  }

  /** Resumes this queue (see {@linkcode Admin.resumeQueue}). */
  resume(): Promise<QueueFlow> {
    return this.resumeQueue(this.queue);
  }

  /**
   * Changes this queue's limits (see {@linkcode Admin.setQueueLimits}): given fields set,
   * `null` removes, absent ones stay.
   *
   * @example At most 100 starts a second and 5 at once; one at a time per customer
   * ```ts
   * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
   *
   * const db = openDatabase(":memory:");
   * SqliteStorage.setup(db);
   * const email = new SqliteStorage<{ to: string }>(db, "email");
   * await email.setLimits({ rate: { limit: 100, perMs: 1_000 }, concurrency: 5, groupConcurrency: 1 });
   * await email.push({ to: "a@b.c" }, { group: "customer-42" });
   * const limits = await email.getLimits();
   * if (limits.concurrency !== 5) throw new Error("unexpected");
   * db.close();
   * ```
   */
  setLimits(limits: QueueLimitsChange): Promise<QueueFlow> {
    return this.setQueueLimits(this.queue, limits);
  }

  /** Removes every limit of this queue. */
  clearLimits(): Promise<QueueFlow> {
    return this.clearQueueLimits(this.queue);
  }

  /** This queue's limits (`{}`: none). */
  async getLimits(): Promise<QueueLimits> {
    return (await this.queueFlow(this.queue)).limits;
  }

  /** Whether this queue is paused. */
  async isPaused(): Promise<boolean> {
    return (await this.queueFlow(this.queue)).paused;
  }

  /**
   * Enqueues one task; resolves to its id. With `unique`, a duplicate inserts nothing and
   * resolves to the earlier task's id (see {@linkcode pushDetailed} to tell the two apart).
   */
  async push(args: T, options: PushOptions = {}): Promise<string> {
    const row = this.taskRow(args, options);
    const { existing } = await this.#insert([row]);
    return existing?.get(row.id) ?? row.id;
  }

  /**
   * Enqueues one task like {@linkcode push}, and says whether it was inserted: `inserted` is
   * false when a `unique` push found an earlier task that blocks it, whose id `id` then is.
   *
   * @example Tell a new task from a duplicate
   * ```ts
   * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
   *
   * const db = openDatabase(":memory:");
   * SqliteStorage.setup(db);
   * const reports = new SqliteStorage<{ month: string }>(db, "reports");
   * const first = await reports.pushDetailed({ month: "2026-01" }, { unique: {} });
   * const again = await reports.pushDetailed({ month: "2026-01" }, { unique: {} });
   * if (!first.inserted || again.inserted || again.id !== first.id) throw new Error("unexpected");
   * db.close();
   * ```
   */
  async pushDetailed(args: T, options: PushOptions = {}): Promise<PushResult> {
    const row = this.taskRow(args, options);
    const { existing } = await this.#insert([row]);
    const holder = existing?.get(row.id);
    return holder === undefined ? { id: row.id, inserted: true } : { id: holder, inserted: false };
  }

  /** Enqueues a built {@linkcode Task}. */
  pushTask(task: Task<T>): Promise<string> {
    return this.push(task.args, task.options);
  }

  /**
   * Enqueues many tasks in one transaction: all or none. Accepts arrays, iterables and async
   * iterables of {@linkcode Task}s. A `unique` task is checked on its own, in order: when an
   * earlier task blocks it (one stored, or one earlier in the same call), its slot gets that
   * task's id and the others are still inserted. A duplicate id still rejects the whole call
   * with `DuplicateTaskError`.
   */
  async pushAll(tasks: Iterable<Task<T>> | AsyncIterable<Task<T>>): Promise<string[]> {
    const rows = await this.#taskRows(tasks);
    const { existing } = await this.#insert(rows);
    if (existing === undefined) return rows.map((row) => row.id);
    return rows.map((row) => existing.get(row.id) ?? row.id);
  }

  /**
   * Enqueues many tasks like {@linkcode pushAll}, and says for each whether it was inserted
   * (see {@linkcode pushDetailed}), in the order given.
   */
  async pushAllDetailed(
    tasks: Iterable<Task<T>> | AsyncIterable<Task<T>>,
  ): Promise<PushResult[]> {
    const rows = await this.#taskRows(tasks);
    const { existing } = await this.#insert(rows);
    return rows.map((row) => {
      const holder = existing?.get(row.id);
      return holder === undefined
        ? { id: row.id, inserted: true }
        : { id: holder, inserted: false };
    });
  }

  async #taskRows(tasks: Iterable<Task<T>> | AsyncIterable<Task<T>>): Promise<NewTaskRow[]> {
    const rows: NewTaskRow[] = [];
    // One time for the whole call: tasks pushed together with one delay fall due together.
    const now = this.clock.now();
    if (Symbol.iterator in tasks) {
      // A plain loop: `for await` over an array costs a promise and a microtask per task.
      for (const task of tasks) rows.push(this.taskRow(task.args, task.options, now));
    } else {
      for await (const task of tasks) rows.push(this.taskRow(task.args, task.options, now));
    }
    return rows;
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
    const write = async () => {
      const { existing } = await this.#insert(batch);
      for (const row of batch) ids.push(existing?.get(row.id) ?? row.id);
      batch = [];
    };
    for await (const item of args) {
      batch.push(this.taskRow(item, pushOptions));
      if (batch.length >= batchSize) await write();
    }
    await write();
    return ids;
  }

  /**
   * Starts a workflow run: records the run and enqueues its first step with `args`, in one
   * transaction. A worker built with a `Workflow` (or a `DagFlow`) on this queue runs it.
   * Resolves to the run's id.
   */
  async pushStart(args: T, options: PushOptions = {}): Promise<string> {
    if (options.unique !== undefined) {
      throw new TypeError(
        `Cannot start a workflow run on queue '${this.queue}' with 'unique': unique applies to tasks pushed with push(), pushAll() and pushStream(), not to workflow runs`,
      );
    }
    const row = this.taskRow(args, options);
    const runId = ulid(row.createdAt);
    row.runId = runId;
    const run: { id: string; queue: string; now?: number } = { id: runId, queue: this.queue };
    const now = this.timeForDatabase();
    if (now !== undefined) run.now = now;
    const { duplicate } = await this.backend.runStart(run, row);
    if (duplicate !== null) throw new DuplicateTaskError(duplicate, this.queue);
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

  /**
   * Creates the cron schedule `name` on this queue, or replaces it (an upsert by name): the
   * running workers of the queue then enqueue one task per tick with `args`, whatever their
   * number, processes or hosts. The expression is croner's (5 fields, or 6 with seconds first;
   * `L`, `W`, `#`, `@daily`…), read in `options.timezone` (UTC by default) with its daylight
   * saving time. Each task's id is `cron:<name>:<tick ms>`, its due time the tick, and its meta
   * has `cron: { schedule, tick }` (see `CronMeta`; `ctx.meta.cron` in the handler).
   *
   * Replacing a schedule with another expression or zone (or resuming a paused one) moves its
   * next tick to the first after now; otherwise it keeps its next tick, so a process that
   * declares its schedules at every start still catches up what it missed (see `catchUp`).
   *
   * Throws {@linkcode InvalidScheduleError} for a bad expression, zone or option (nothing is
   * written), and {@linkcode ScheduleNameTakenError} when another queue has a schedule of that
   * name (names are unique in the database).
   *
   * @example A daily digest at 8:00 in Paris
   * ```ts
   * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
   *
   * const db = openDatabase(":memory:");
   * SqliteStorage.setup(db);
   * const digests = new SqliteStorage<{ kind: string }>(db, "digests");
   * await digests.schedule("daily-digest", "0 8 * * *", { kind: "digest" }, {
   *   timezone: "Europe/Paris",
   *   catchUp: "latest",
   * });
   * const [digest] = await digests.listSchedules();
   * if (digest?.timezone !== "Europe/Paris") throw new Error("unexpected");
   * if (!(await digests.unschedule("daily-digest"))) throw new Error("unexpected");
   * db.close();
   * ```
   */
  async schedule(
    name: string,
    cron: string,
    args: T,
    options: ScheduleOptions = {},
  ): Promise<void> {
    const row = scheduleRow({
      queue: this.queue,
      name,
      cron,
      args,
      options,
      codec: this.codec,
      now: await this.currentTime(),
    });
    const written = await this.backend.scheduleUpsert(row);
    if (!written.written) throw new ScheduleNameTakenError(name, this.queue, written.queue);
  }

  /**
   * Deletes this queue's schedule `name`; false when it has none of that name. Tasks it already
   * enqueued stay.
   */
  async unschedule(name: string): Promise<boolean> {
    return await this.backend.scheduleDelete(name, this.queue);
  }

  /**
   * This queue's cron schedules (another queue's, or every queue's, with `queue`; see
   * {@linkcode Admin.listSchedules}).
   */
  override listSchedules(options: ListSchedulesOptions = {}): Promise<ScheduleInfo<T>[]> {
    return super.listSchedules({ queue: this.queue, ...options });
  }

  /**
   * Enqueues the due ticks of this queue's schedules now, and resolves to the ids of the tasks
   * it enqueued. Workers of the queue do this by themselves (at each tick, and every second to
   * notice new schedules); call it to drive schedules without a worker, or in tests with a
   * fake clock. Safe to call from anywhere at once: each tick is enqueued once.
   */
  async enqueueDueSchedules(): Promise<string[]> {
    const ids: string[] = [];
    while (true) {
      const outcome = await enqueueDue(this.backend, this.queue, this.timeForDatabase());
      ids.push(...outcome.ids);
      if (!outcome.more) return ids;
    }
  }

  protected override get orphanAfterMs(): number {
    return this.config.reenqueueOrphanedAfterMs;
  }

  /** A task's row: options checked, arguments encoded (a text codec's as text). */
  protected taskRow(
    args: T,
    options: PushOptions,
    now: number = this.clock.now(),
  ): NewTaskRow & { id: string } {
    const resolved = resolvePush(this.queue, options, now);
    let bytes: Uint8Array | string;
    try {
      // A text codec's text goes to the database as it is, which stores its UTF-8 bytes (the
      // INSERT casts it): no encoding in JavaScript first (pushAll of small objects: +7 % on
      // Deno, +18 % on Bun).
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
    const row: NewTaskRow & { id: string } = {
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
    if (resolved.group !== null) row.groupKey = resolved.group;
    // A delay counts from the database's time when time comes from it (hosts' clocks differ).
    if (this.databaseTime && options.runAt === undefined) row.runAfterMs = resolved.runAt - now;
    if (resolved.unique !== undefined) {
      const { key, periodMs, states } = resolved.unique;
      row.unique = { key: key ?? argsKey(bytes), periodMs, states };
      // The period is measured by the clock the storage's times come from.
      if (!this.databaseTime) row.unique.now = now;
    }
    return row;
  }

  async #insert(rows: NewTaskRow[]): Promise<InsertOutcome> {
    if (rows.length === 0) return { duplicate: null };
    const outcome = await this.backend.taskInsertMany(rows);
    if (outcome.duplicate !== null) throw new DuplicateTaskError(outcome.duplicate, this.queue);
    return outcome;
  }
}
