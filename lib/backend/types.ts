/**
 * The backend seam: what the queue needs from a database, as one interface that SQLite and
 * PostgreSQL implement each with their own SQL. Storages, workers, workflows, the dashboard and
 * the CLI call it and never see SQL, a driver or a file path. Every operation is one unit of
 * work with the guarantee its documentation states; every one that writes runs in one
 * transaction of its own (or, for `workerFlush`, one transaction for all it does).
 *
 * Rows keep the database's names (`run_at`, `lock_by`); times are epoch milliseconds. An
 * operation that takes `now` uses it as the current time; when it is `undefined` the backend
 * uses its own time (PostgreSQL: the database server's, so that hosts with skewed clocks agree).
 *
 * @module
 */

/**
 * Where a task stands. One closed union, stored verbatim:
 * - `pending`: waiting to be claimed; `runAt` may be in the future (scheduled).
 * - `queued`: claimed into a worker's buffer, not started yet.
 * - `running`: a handler is executing it; `lockBy` names the worker.
 * - `done`: the handler succeeded; its result is stored.
 * - `failed`: an attempt failed; it is retried at `runAt` (persisted backoff).
 * - `killed`: attempts exhausted, aborted on purpose, or undecodable; terminal until retried by hand.
 */
export type TaskStatus = "pending" | "queued" | "running" | "done" | "failed" | "killed";

/** Every status, in lifecycle order. */
export const TASK_STATUSES: readonly TaskStatus[] = [
  "pending",
  "queued",
  "running",
  "done",
  "failed",
  "killed",
];

/** A task as stored: payload and result still encoded. */
export interface TaskRow {
  id: string;
  queue: string;
  status: TaskStatus;
  args: Uint8Array;
  attempts: number;
  max_attempts: number;
  priority: number;
  run_at: number;
  created_at: number;
  lock_by: string | null;
  lock_at: number | null;
  done_at: number | null;
  last_result: Uint8Array | null;
  last_error: string | null;
  meta: string | null;
  backoff: string | null;
  /** The workflow run the task belongs to. */
  run_id: string | null;
  /** The task's position in its workflow (JSON), set by the workflow layer. */
  step: string | null;
  /** The unique key it was pushed with (see {@linkcode UniqueSpec}); absent or null for none. */
  unique_key?: string | null;
  /** The group the task counts in for its queue's `groupConcurrency` (see `QueueLimits`). */
  group_key: string | null;
  /**
   * The last progress a handler reported (JSON of a number or an object), read by `taskGet`
   * and `taskGetMany` only; absent or null when none was reported.
   */
  progress?: string | null;
  /** The attempt that reported `progress`. */
  progress_attempt?: number | null;
  /** When `progress` was written (the flush's time). */
  progress_at?: number | null;
}

/**
 * A listed task: with `previewBytes`, `args` and `last_result` hold at most that many of their
 * first bytes, and `args_bytes` and `result_bytes` their whole size.
 */
export type ListedTaskRow = TaskRow & { args_bytes?: number; result_bytes?: number | null };

/**
 * What a claim returns: what a worker needs to run a task, and nothing it does not. A claim with
 * `textArgs` may read the payload as text: `args` is then a string, and `args_bytes` the size of
 * the payload as stored, which tells text that spells the stored bytes exactly from text a
 * driver mended (see `isExactText` in lib/storage/codec.ts).
 */
export type ClaimedRow =
  & Pick<
    TaskRow,
    | "id"
    | "queue"
    | "status"
    | "attempts"
    | "max_attempts"
    | "priority"
    | "run_at"
    | "lock_at"
    | "meta"
    | "backoff"
    | "run_id"
    | "step"
  >
  & { args: Uint8Array | string; args_bytes?: number };

/**
 * What makes a push unique: while the task holding `key` in its queue blocks, the push inserts
 * nothing and answers that task's id. The holder blocks while it exists, is in one of `states`
 * and (with `periodMs`) was pushed less than `periodMs` before this push.
 */
export interface UniqueSpec {
  /** The key: the caller's, or one made from the encoded arguments (`args:sha256:…`). */
  key: string;
  /** How long after the holder's push it blocks; `null`: as long as it is in `states`. */
  periodMs: number | null;
  /** The states in which the holder blocks. */
  states: readonly TaskStatus[];
  /** The push's time by the storage's clock; `undefined`: the database's time (PostgreSQL). */
  now?: number;
}

/** What an insert needs. */
export interface NewTaskRow {
  id: string;
  queue: string;
  /** The encoded arguments: bytes, or a text codec's text (stored as its UTF-8 bytes). */
  args: Uint8Array | string;
  maxAttempts: number;
  priority: number;
  /** When it falls due. */
  runAt: number;
  createdAt: number;
  /**
   * Set when the due time is relative (a delay, or none) and the storage takes time from the
   * database: the backend then makes `run_at` its own time plus this, and `created_at` its own
   * time, ignoring `runAt` and `createdAt` (made by this host's clock).
   */
  runAfterMs?: number;
  meta: string | null;
  backoff: string | null;
  runId?: string | null;
  step?: string | null;
  /** Set for a unique push: see {@linkcode UniqueSpec}. */
  unique?: UniqueSpec;
  /** The task's group (see `QueueLimits.groupConcurrency`); none when absent. */
  groupKey?: string | null;
}

/**
 * What an insert did. `duplicate`: an id that exists already (nothing was written). `existing`,
 * only when some rows were unique: for each of those whose key was held, its id mapped to the
 * holder's (that row was not inserted; the others were).
 */
export interface InsertOutcome {
  duplicate: string | null;
  existing?: ReadonlyMap<string, string>;
}

/** The outcome of one attempt, written by the worker. */
export interface TaskAck {
  id: string;
  /** The task's queue: outcomes are counted per queue. */
  queue: string;
  /** The attempt number the worker ran: fences acks of an attempt that was since rescued. */
  attempt: number;
  status: "done" | "failed" | "killed";
  /** The encoded result: bytes, or a text codec's text. */
  result: Uint8Array | string | null;
  /** The serialised error (JSON of `TaskError`). */
  error: string | null;
  /** For `failed`: how long until the next attempt falls due. */
  retryInMs: number | null;
  /** When the attempt ended, by the worker's clock (the backend may use its own time instead). */
  doneAt: number;
  /** The task belongs to a workflow run: its ack must reach the run's bookkeeping. */
  inRun?: boolean;
}

/** Where a workflow run stands: `running` until its last step is done, or `failed` when a step is killed. */
export type RunStatus = "running" | "done" | "failed";

/** Every run state, in lifecycle order. */
export const RUN_STATUSES: readonly RunStatus[] = ["running", "done", "failed"];

/**
 * The latest progress of a running attempt, to write with a worker's flush: written only while
 * `attempt` is the task's current running attempt held by the flushing worker (fenced like acks).
 */
export interface ProgressWrite {
  id: string;
  attempt: number;
  /** The progress as JSON (a number 0-100 or a small object; validated by the worker). */
  value: string;
}

/**
 * Log lines of a running attempt, to append with a worker's flush, in order; fenced like
 * {@linkcode ProgressWrite}.
 */
export interface LogWrite {
  id: string;
  attempt: number;
  /** Each line with the time it was logged (the worker's clock). */
  lines: readonly { at: number; line: string }[];
}

/** A stored log line of a task (see {@linkcode Backend.taskLogs}). */
export interface LogRow {
  /** The line's position among all lines of the database: increases with every line appended. */
  seq: number;
  task_id: string;
  attempt: number;
  at: number;
  line: string;
}

/** Which log lines of a task to read. */
export interface LogFilter {
  /** Only this attempt's lines. */
  attempt?: number;
  /** Only lines after this `seq` (for following a log). */
  after?: number;
  /** At most this many lines: the first ones after `after`, or with `last`, the last ones. */
  limit: number;
  /** Read the last `limit` lines instead of the first (still returned oldest first). */
  last?: boolean;
}

/** A workflow run as stored. */
export interface RunRow {
  id: string;
  queue: string;
  workflow: string | null;
  status: RunStatus;
  created_at: number;
  done_at: number | null;
  result: Uint8Array | null;
  error: string | null;
  /** The workflow's shape as JSON (`WorkflowGraph`), recorded with its name. */
  graph: string | null;
}

/** A run in a listing, with how many tasks it has in each state. */
export interface RunListRow extends Omit<RunRow, "result" | "graph"> {
  tasks: number;
  tasks_done: number;
  tasks_active: number;
  tasks_killed: number;
}

/** A part of a join, as recorded. */
export interface JoinPartRow {
  slot: number;
  status: "done" | "killed";
  result: Uint8Array | null;
  error: string | null;
}

/** A registered worker, as stored. */
export interface WorkerRow {
  name: string;
  queue: string;
  instance_id: string;
  host: string;
  pid: number;
  started_at: number;
  last_seen: number;
  stopped_at: number | null;
  concurrency: number;
}

/** A registered worker in a listing. */
export interface WorkerListRow extends WorkerRow {
  /** Whether it is alive: not stopped, and its heartbeat (or, on this host, its process) says so. */
  alive: boolean;
}

/** Outcomes recorded in one minute for one queue. */
export interface ThroughputRow {
  queue: string;
  /** Epoch ms at the start of the minute. */
  minute: number;
  done: number;
  failed: number;
  killed: number;
}

/**
 * Outcomes counted per queue since the database was set up: the minutes still in
 * `apalis_throughput` plus those deleted from it (a trigger folds each deleted minute into
 * `apalis_outcome_totals` in the deleting transaction), read in one statement. Never decreases.
 */
export interface OutcomeTotalRow {
  queue: string;
  /** Attempts started (see `FlushRequest.started`). */
  started: number;
  done: number;
  failed: number;
  killed: number;
}

/**
 * Run and wait times of a queue's most recent `done` tasks, bucketed by the database (see
 * {@linkcode Backend.taskDurations}). `run_buckets[i]` and `wait_buckets[i]` count the tasks whose
 * time is at most `boundsMs[i]` (cumulative, as Prometheus buckets are).
 */
export interface DurationsRow {
  queue: string;
  /** Tasks in the sample. */
  n: number;
  /** Sum of run times (`done_at - lock_at`, at least 0), ms. */
  run_sum: number;
  /** Sum of wait times (`lock_at - run_at`, at least 0), ms. */
  wait_sum: number;
  run_buckets: number[];
  wait_buckets: number[];
}

/** How many tasks of a queue are in a status. */
export interface CountRow {
  queue: string;
  status: TaskStatus;
  n: number;
}

/**
 * A task a workflow step enqueues: its own fields; it inherits the backoff of the task whose
 * ack enqueues it, and its run's id.
 */
export interface StepTask {
  /** Its id; made by the backend when absent. */
  id?: string;
  queue: string;
  args: Uint8Array;
  maxAttempts: number;
  priority: number;
  /** How long after the ack it falls due. */
  delayMs: number;
  meta: string | null;
  step: string;
}

/**
 * What a join enqueues when its last part arrives: its continuation task (with a fixed id, so
 * that it is enqueued once). Like a {@linkcode StepTask}, it inherits the acked task's backoff.
 */
export interface JoinSpec {
  key: string;
  expected: number;
  taskId: string;
  queue: string;
  /** A placeholder payload, replaced by the combined inputs when the join completes. */
  args: Uint8Array;
  step: string;
  priority: number;
  maxAttempts: number;
  meta: string | null;
}

/**
 * A write that commits with a workflow step's ack, in its transaction, in order. Effects are
 * data, so that each backend runs them in its own way: SQLite synchronously inside its
 * transaction, PostgreSQL with awaited statements inside its own.
 */
export type RunEffect =
  /** Names the run's workflow and records its shape, if not done yet. */
  | { kind: "name"; workflow: string; graph: string }
  /** Marks the run done with `result`, if it is still running. */
  | { kind: "complete"; result: Uint8Array | null }
  /** Enqueues these tasks, if the run is still running. */
  | { kind: "enqueue"; tasks: StepTask[] }
  /** Declares a join (ignored if already declared), if the run is still running. */
  | { kind: "declare"; join: JoinSpec }
  /**
   * Records part `slot` of join `key`, even if the run has failed (retrying the killed step
   * revives the run, and the joins this branch completed resume with it). When the join (declared
   * by `join`, ignored if it already exists) then has all its parts and the run is running, its
   * continuation is enqueued once, with `combine` of the parts' results as its payload.
   */
  | {
    kind: "feed";
    join: JoinSpec;
    slot: number;
    result: Uint8Array | null;
    combine: (results: (Uint8Array | null)[]) => Uint8Array;
  }
  /**
   * Records part `slot` of the run's end (the sinks of a DAG); when all `expected` parts are in
   * and the run is running, marks it done with `combine` of the parts' results.
   */
  | {
    kind: "finish";
    key: string;
    slot: number;
    expected: number;
    result: Uint8Array | null;
    combine: (results: (Uint8Array | null)[]) => Uint8Array | null;
  };

/** An outcome to record in a flush, with the writes that must commit with it. */
export interface FlushAck {
  ack: TaskAck;
  /** A workflow step's run and the writes that commit with its ack, or not at all. */
  run?: { id: string; effects: readonly RunEffect[] };
  /**
   * Called (synchronously) when the effects throw for a reason that is not a problem of the
   * database itself: returns the ack of the failed attempt to record instead (no effects).
   */
  onEffectsFailed?: (error: unknown) => TaskAck;
}

/**
 * How a queue's tasks may start, across every worker of every process and host: at most `rate`
 * starts in any `perMs` milliseconds, at most `concurrency` held at once (claimed and not
 * finished), at most `groupConcurrency` held at once per group key. A field that is absent is
 * no limit.
 */
export interface QueueLimits {
  rate?: { limit: number; perMs: number };
  concurrency?: number;
  groupConcurrency?: number;
}

/**
 * A change of a queue's limits: a field that is absent stays as it is, `null` removes it.
 */
export interface QueueLimitsChange {
  rate?: { limit: number; perMs: number } | null;
  concurrency?: number | null;
  groupConcurrency?: number | null;
}

/** A queue's settings as stored (`apalis_queues`): paused or not, and its limits. */
export interface QueueSettingsRow {
  queue: string;
  paused: boolean;
  rate_limit: number | null;
  rate_per_ms: number | null;
  concurrency: number | null;
  group_concurrency: number | null;
  /** When the settings last changed. */
  updated_at: number;
}

/** A claim of a shared storage for another queue's idle worker. */
export interface SharedWant {
  queue: string;
  worker: string;
  limit: number;
}

/**
 * One write of a worker: record finished attempts, release what it holds when stopping, start
 * tasks another worker claimed for it, and claim due tasks. See {@linkcode Backend.workerFlush}.
 */
export interface FlushRequest {
  queue: string;
  worker: string;
  /** The worker's clock; the backend's own time when absent. */
  now?: number;
  acks: readonly FlushAck[];
  /**
   * Progress of running attempts, written before the acks (so an attempt's last progress lands
   * with its outcome); absent when there is none, and then no statement is run for it.
   */
  progress?: readonly ProgressWrite[];
  /** Log lines of running attempts, appended before the acks; absent when there are none. */
  logs?: readonly LogWrite[];
  /**
   * Return the worker's `queued` tasks and these claimed-ahead ones to `pending`: when it stops,
   * or when its queue is paused or limited (see `FlushResult.flow`).
   */
  release?: { ahead: readonly { id: string; attempts: number }[] };
  /** `queued` tasks claimed for this worker to start now. */
  start: readonly string[];
  /** Tasks to claim into `running`: for free slots (`direct`) and to start ahead of them. */
  claim: { direct: number; ahead: number; textArgs: boolean };
  /** Claims for other queues' idle workers (a shared storage), in the same transaction. */
  shared?: readonly SharedWant[];
  /**
   * Attempts the worker started since its previous flush, added to the queue's started count
   * (`apalis_throughput.started`, this flush's minute) in the same transaction. Counted when they
   * start, not when claimed: tasks claimed ahead and given back never count.
   */
  started?: number;
}

/** What a flush did. */
export interface FlushResult {
  /** Tasks claimed into `running` for free slots. */
  running: ClaimedRow[];
  /** Tasks claimed into `running` to start ahead, as slots free up. */
  ahead: ClaimedRow[];
  /** The ids of `start` that were still this worker's, now `running`. */
  started: Set<string>;
  /** The ids of acks whose attempt was fenced off (killed or rescued meanwhile): not recorded. */
  fenced: Set<string>;
  /** The time the flush used. */
  now: number;
  /**
   * When the direct claim came back short: how long until the next waiting task of the queue
   * falls due (`null`: none is waiting). Absent when it was not short.
   */
  nextDueInMs?: number | null;
  /** Tasks claimed for other queues' workers, by queue (committed as `queued`). */
  deliveries?: Map<string, ClaimedRow[]>;
  /**
   * Set when the queue is paused (nothing was claimed or started; the worker's `queued` tasks
   * went back to `pending`) or has limits (nothing was claimed ahead): the worker then gives back
   * what it holds ahead and starts nothing from memory. `nextDueInMs` then says when to look
   * again (at most a second).
   */
  flow?: "paused" | "limited";
  /**
   * The acks recorded instead of those whose effects failed (see `FlushAck.onEffectsFailed`), by
   * task id, with the error.
   */
  replaced?: Map<string, { ack: TaskAck; error: unknown }>;
}

/** A worker coming up. */
export interface WorkerRegistration {
  name: string;
  queue: string;
  instanceId: string;
  host: string;
  pid: number;
  concurrency: number;
  /** A worker whose heartbeat is older than this is dead. */
  orphanAfterMs: number;
  now?: number;
}

/** Filters of a task listing. */
export interface TaskListFilter {
  queue?: string;
  status?: TaskStatus;
  limit: number;
  offset: number;
  /** Read at most this many bytes of each payload and result (see `ListedTaskRow`). */
  previewBytes?: number;
}

/** Filters of a run listing. */
export interface RunListFilter {
  queue?: string;
  status?: RunStatus;
  limit: number;
  offset: number;
}

/** What to do with ticks missed while no worker of the queue ran (see `ScheduleOptions`). */
export type CatchUp = "none" | "latest" | "all";

/** A cron schedule as stored. `next_at` is the tick the schedule enqueues next. */
export interface ScheduleRow {
  name: string;
  queue: string;
  cron: string;
  /** The IANA time zone the expression is read in; `null`: UTC. */
  timezone: string | null;
  /** The encoded arguments of every task it enqueues. */
  args: Uint8Array;
  priority: number;
  max_attempts: number;
  /** The meta of every task it enqueues (JSON), besides the tick. */
  meta: string | null;
  catch_up: CatchUp;
  paused: boolean;
  next_at: number;
  /** The last tick it enqueued a task for. */
  last_at: number | null;
  last_task_id: string | null;
  /** Bumped by every upsert: fences an advance computed from an older version of the row. */
  revision: number;
  created_at: number;
  updated_at: number;
}

/** A schedule to create or replace (see {@linkcode Backend.scheduleUpsert}). */
export interface ScheduleUpsert {
  name: string;
  queue: string;
  cron: string;
  timezone: string | null;
  /** The encoded arguments: bytes, or a text codec's text. */
  args: Uint8Array | string;
  priority: number;
  maxAttempts: number;
  meta: string | null;
  catchUp: CatchUp;
  paused: boolean;
  /** The first tick after now, for a new row or one whose timing changed. */
  nextAt: number;
  /** The time of the change. */
  now: number;
}

/** The due schedules of a queue, as {@linkcode Backend.scheduleDue} reads them. */
export interface ScheduleDue {
  /** The time the read used (PostgreSQL without a clock: the server's). */
  now: number;
  /** Schedules of the queue, not paused, whose next tick is at or before `now`. */
  due: ScheduleRow[];
  /** The earliest next tick after `now` of the queue's other running schedules; null: none. */
  nextAt: number | null;
}

/** A schedule's move past its due ticks, with the tasks they enqueue (see `scheduleAdvance`). */
export interface ScheduleAdvance {
  name: string;
  queue: string;
  /** The revision the advance was computed from. */
  revision: number;
  /** The next tick the advance was computed from. */
  from: number;
  /** The new next tick: the first after now. */
  to: number;
  /** The tasks of the ticks enqueued (ids `cron:<name>:<tick ms>`), oldest first; may be empty. */
  tasks: NewTaskRow[];
}

/**
 * Where a retention pass goes on from: the phase (`done` tasks, then `killed` tasks, then
 * finished workflow runs) and the last entry it looked at.
 */
export type RetentionCursor =
  | { phase: "done" | "killed"; after: string }
  | { phase: "runs"; after: readonly [doneAt: number, id: string] };

/** One step of a queue's retention pass (see {@linkcode Backend.retentionStep}). */
export interface RetentionStep {
  queue: string;
  /** Who deletes: the lease's holder while it deletes (a worker's name and instance). */
  holder: string;
  /** How long the lease stays this holder's after a step that deleted. */
  leaseMs: number;
  /** How long `done` tasks are kept after they finished, in ms; `null`: forever. */
  doneMs: number | null;
  /** How long `killed` tasks are kept after they were killed, in ms; `null`: forever. */
  killedMs: number | null;
  /** The most tasks the step deletes (in one transaction; a whole run may make it more). */
  batchSize: number;
  /** Where the previous step of the pass stopped; absent for the pass's first step. */
  after?: RetentionCursor;
  /** The time; the backend's own when absent. */
  now?: number;
}

/** What a retention step did. */
export interface RetentionStepResult {
  /**
   * `deleted`: the holder holds the lease and deleted rows. `none`: nothing expired in the
   * entries it read (nothing was written). `leased`: another holder holds the lease: nothing was
   * deleted, and the pass should end.
   */
  outcome: "deleted" | "none" | "leased";
  /** Tasks deleted (those of the runs included). */
  tasks: number;
  /** Workflow runs deleted, with their tasks. */
  runs: number;
  /** Where the next step goes on from; `null`: the pass is over. */
  next: RetentionCursor | null;
  /**
   * For `deleted`: when the step's transaction held the lease, from the lease check to the end of
   * its deletes (epoch ms; PostgreSQL: the server's clock, with microseconds).
   */
  held?: { from: number; to: number };
}

/** An attempt a worker is running: its task and the attempt number it started. */
export interface HeldAttempt {
  id: string;
  attempt: number;
}

/** An attempt its worker no longer holds (see {@linkcode Backend.workerLostAttempts}). */
export interface LostAttemptRow {
  id: string;
  attempt: number;
  /** Where the task stands now; null when it was deleted. */
  status: TaskStatus | null;
  /** Who holds it now (another worker after a rescue), if anyone. */
  lock_by: string | null;
  /** Its attempts now. */
  attempts: number | null;
  /** The stored error (JSON): a kill's `KilledError`, a rescue's `WorkerLostError`. */
  last_error: string | null;
}

/** A kill by hand that committed: the task and the reason given. */
export interface TaskKill {
  id: string;
  reason: string;
}
/**
 * A database the queue runs on. Implementations: `SqliteBackend` (lib/store/backend.ts) and
 * `PostgresBackend` (lib/postgres/backend.ts).
 */
export interface Backend {
  /** The engine: `"sqlite"` or `"postgres"`. */
  readonly engine: "sqlite" | "postgres";
  /** Where the database is, for messages: a file path, or a URL without its password. */
  readonly location: string;
  /** Whether the connection was closed (a worker then stops with `WorkerFatalError`). */
  readonly closed: boolean;

  // --- schema

  /** Creates or upgrades the tables; idempotent, safe when several processes run it at once. */
  setup(): Promise<number>;

  // --- inserts

  /**
   * Inserts tasks in one transaction, all or none, and wakes the queue's workers. With a
   * duplicate id, nothing is written and that id is returned. A row with `unique` is inserted
   * only if no task blocks its key (see {@linkcode UniqueSpec}), and then holds the key; the
   * check and the claim of the key are one step in the transaction, under the key's row lock
   * (SQLite: the write lock), so concurrent pushes of one key from any number of processes
   * insert one task. Unique rows are checked in the order given, so a later row of the call
   * sees an earlier one. Rows without `unique` cost what they cost before.
   */
  taskInsertMany(rows: readonly NewTaskRow[]): Promise<InsertOutcome>;
  /**
   * Starts a workflow run: the run and its first task, in one transaction. With a duplicate
   * task id, nothing is written and that id is returned. `first.unique` is not supported.
   */
  runStart(
    run: { id: string; queue: string; now?: number },
    first: NewTaskRow,
  ): Promise<{ duplicate: string | null }>;

  // --- reads

  /** One task, or undefined. */
  taskGet(id: string): Promise<TaskRow | undefined>;
  /** Several tasks by id (missing ids are left out). */
  taskGetMany(ids: readonly string[]): Promise<TaskRow[]>;
  /** Tasks newest first. */
  taskList(filter: TaskListFilter): Promise<ListedTaskRow[]>;
  /** Counts per queue and status (of one queue, or all). */
  taskCounts(queue?: string): Promise<CountRow[]>;
  /** The `run_at` of the oldest due waiting task, per queue. */
  taskOldestDue(now?: number): Promise<{ queue: string; run_at: number }[]>;
  /**
   * Registered workers, most recently seen first, each with whether it is alive for `orphanAfterMs`
   * (a heartbeat younger than that; SQLite also knows a worker of this host dead when its process
   * is gone).
   */
  workerList(
    queue: string | undefined,
    orphanAfterMs: number,
    now?: number,
  ): Promise<WorkerListRow[]>;
  /** Outcomes per queue and minute since `since`, oldest first. */
  throughputSince(since: number, queue?: string): Promise<ThroughputRow[]>;
  /** Outcomes per queue since the database was set up (see {@linkcode OutcomeTotalRow}). */
  outcomeTotals(): Promise<OutcomeTotalRow[]>;
  /**
   * For each of `queues`: run time (`done_at - lock_at`) and wait time (`lock_at - run_at`, due
   * to start) of its `sample` newest `done` tasks (by id: push order for generated ids), counted
   * into buckets of upper bounds `boundsMs` by the database. Reads at most `sample` entries of
   * the finished-tasks index and their rows per queue; queues without done tasks are left out.
   */
  taskDurations(
    queues: readonly string[],
    sample: number,
    boundsMs: readonly number[],
  ): Promise<DurationsRow[]>;
  /**
   * A task's log lines, oldest first (see {@linkcode LogFilter}). Lines go with their task when
   * it is deleted (by hand, vacuum or retention).
   */
  taskLogs(id: string, filter: LogFilter): Promise<LogRow[]>;
  /** One run, or undefined. */
  runGet(id: string): Promise<RunRow | undefined>;
  /** A run's tasks in the order they were enqueued. */
  runTasks(id: string): Promise<TaskRow[]>;
  /** Runs newest first. */
  runList(filter: RunListFilter): Promise<RunListRow[]>;
  /** The parts of a join, by slot. */
  joinParts(runId: string, key: string): Promise<JoinPartRow[]>;
  /** The time now, as the backend sees it (PostgreSQL: the server's clock). */
  timeNow(): Promise<number>;

  // --- changes by hand (each one transaction; workflow bookkeeping follows)

  /**
   * Runs a finished or waiting task again with a fresh attempt budget, due at `now`. False if
   * it does not exist or is held by a worker (`queued`, `running`).
   */
  taskRetry(id: string, now?: number): Promise<boolean>;
  /** Retries every task of `queue` in `status`, in batches; returns how many. */
  taskRetryAll(
    filter: { queue: string; status: TaskStatus; now?: number },
    batchSize: number,
  ): Promise<number>;
  /** Kills a task that has not finished, with `error`; false if it had finished or is missing. */
  taskKill(id: string, error: string, now?: number): Promise<boolean>;
  /** Deletes a task whatever its state (and the unique key it holds); false if it was missing. */
  taskDelete(id: string): Promise<boolean>;
  /**
   * Deletes `done` and `killed` tasks that finished at or before `before`, and the outcome
   * counts of minutes that ended by then, in batches; returns how many tasks. A task of a
   * workflow run goes only with its run, whole, as {@linkcode Backend.retentionStep} deletes
   * them: once the run has finished by `before` and every one of its tasks has too.
   */
  taskVacuum(before: number, batchSize: number): Promise<number>;
  /**
   * One step of a queue's retention: reads up to a few times `batchSize` entries after `after`
   * and deletes, in one transaction, the expired ones among them (at most `batchSize` tasks), if
   * `holder` holds the queue's retention lease or can take it (free, expired, or its own); the
   * lease then stays its own for `leaseMs`. A task expires when it finished `done` (or `killed`)
   * at least `doneMs` (`killedMs`) ago. A task of a workflow run goes only with its run, whole:
   * when the run has finished (done, or failed: by the `done` or `killed` age) and every one of
   * its tasks has expired; the run's joins go with it. Each delete checks again, under the
   * transaction's locks, what it read before, so a task retried meanwhile stays. The lease row is
   * locked (PostgreSQL) or written under the write lock (SQLite) by the transaction: steps of two
   * holders never overlap, across processes and hosts. The pass's first step (no `after`) ends
   * at once with `leased` when another holder holds an unexpired lease. A step that finds
   * nothing expired writes nothing. Unique keys of deleted tasks are released (a delete
   * trigger); outcome counts are left alone.
   */
  retentionStep(step: RetentionStep): Promise<RetentionStepResult>;
  /**
   * Ends a pass of `holder`: the queue's retention lease becomes its own until `nextInMs` from
   * now (0: free at once), if it is free, expired or already its own (a compare-and-set, like a
   * step's); another holder's is left alone. After a whole pass, the other workers of the queue
   * then skip their passes until the next one is due.
   */
  retentionRelease(
    release: { queue: string; holder: string; nextInMs: number; now?: number },
  ): Promise<void>;
  /** Names a run's workflow and records its shape, if not done yet. */
  runName(id: string, workflow: string, graph: string): Promise<void>;

  // --- workers

  /**
   * Registers a worker under its name. While another instance of the name is alive, writes
   * nothing and returns that instance's row; otherwise first rescues the tasks the name still
   * holds (a previous incarnation died), records this instance and returns null.
   */
  workerRegister(worker: WorkerRegistration): Promise<WorkerRow | null>;
  /**
   * Records a worker's heartbeat, marks workers whose heartbeat went stale as stopped, and
   * rescues the tasks no live worker holds (a `running` task on its last attempt is killed).
   * Returns how many tasks it rescued, or `null` when this instance no longer owns its name
   * (another instance took it over).
   */
  workerHeartbeat(
    worker: { name: string; instanceId: string; orphanAfterMs: number; now?: number },
  ): Promise<number | null>;
  /**
   * Unregisters a worker that stops: returns its `queued` tasks and `ahead` (claimed ahead, never
   * started: their attempt is given back) to `pending`, and marks it stopped.
   */
  workerUnregister(
    worker: {
      name: string;
      instanceId: string;
      ahead: readonly { id: string; attempts: number }[];
      now?: number;
    },
  ): Promise<void>;
  /**
   * One transaction for a worker's writes. In order: writes the running attempts' progress and
   * appends their log lines (each only while its attempt is the task's current `running` one,
   * held by this worker; no statement when there are none); records the acks (fenced by attempt: an
   * ack of an attempt that was rescued or killed meanwhile changes nothing and is reported in
   * `fenced`), each ack with effects together with its effects or not at all; releases what the
   * worker holds when stopping; starts the `queued` tasks in `start`; claims due tasks of the
   * queue into `running` (highest priority first, then earliest due, then id), those for free
   * slots first, then those ahead (never a task's last attempt); and claims for other queues'
   * workers (`shared`). The queue's settings row is read once: a paused queue claims and starts
   * nothing; a limited one claims no task ahead, and claims for free slots within its limits,
   * serialised with every other claim of the queue (see {@linkcode QueueLimits}). A database problem (locked past the retry time, full, read-only) rejects
   * and writes nothing: the caller keeps its acks for the next flush.
   */
  workerFlush(request: FlushRequest): Promise<FlushResult>;
  /**
   * Reads only. Of the attempts `worker` is running (`held`), returns those whose task the
   * database no longer has `running` at that attempt under `worker`: killed by hand, rescued as
   * an orphan, retried, deleted (then `status` is null). One committed read, by primary key: a
   * kill is seen once it commits, in any process or on any host. A worker calls it only while
   * handlers run, to abort the ones whose outcome would be fenced anyway.
   */
  workerLostAttempts(worker: string, held: readonly HeldAttempt[]): Promise<LostAttemptRow[]>;

  // --- flow control

  /** Every queue's settings (queues never paused nor limited have none). */
  queueSettingsList(): Promise<QueueSettingsRow[]>;
  /** One queue's settings, or undefined. */
  queueSettingsGet(queue: string): Promise<QueueSettingsRow | undefined>;
  /**
   * Changes a queue's limits in one transaction (see {@linkcode QueueLimitsChange}; a new rate
   * starts with an empty window) and wakes its workers; returns the settings now stored.
   */
  queueSetLimits(queue: string, change: QueueLimitsChange, now?: number): Promise<QueueSettingsRow>;
  /** Pauses or resumes a queue and wakes its workers; returns the settings now stored. */
  queueSetPaused(queue: string, paused: boolean, now?: number): Promise<QueueSettingsRow>;
  // --- cron schedules

  /**
   * Creates the schedule `name`, or replaces the one of that name in the same queue: its next
   * tick becomes `nextAt` when the row is new, when its expression or time zone changed, or when
   * it goes from paused to running; otherwise it keeps its next tick (so that a process that
   * declares its schedules at every start does not skip a catch-up). One statement. A schedule of
   * that name in another queue is left alone: returns `{ written: false, queue }` naming it.
   */
  scheduleUpsert(
    schedule: ScheduleUpsert,
  ): Promise<{ written: true } | { written: false; queue: string }>;
  /** Deletes the schedule `name` of `queue`; false if there was none. Its tasks stay. */
  scheduleDelete(name: string, queue: string): Promise<boolean>;
  /** Schedules by name (of one queue, or all). */
  scheduleList(queue?: string): Promise<ScheduleRow[]>;
  /**
   * The schedules of `queue` that are due at `now` (at most `limit`, earliest first), and the
   * next tick of the others. Reads only.
   */
  scheduleDue(queue: string, limit: number, now?: number): Promise<ScheduleDue>;
  /**
   * Moves a schedule from tick `from` to tick `to` and enqueues `tasks`, in one transaction, if
   * the row is still at `from` in `revision` and not paused (a compare-and-set); returns whether
   * it moved. Tasks are inserted with their ids ignored when taken (insert-or-ignore), so that
   * a tick is enqueued once across every worker, process and host. Records the last task as the
   * schedule's last tick and task.
   */
  scheduleAdvance(advance: ScheduleAdvance): Promise<boolean>;

  // --- wake-ups

  /**
   * Calls `listener` when this process kills a task by hand through this backend (see
   * `Admin.kill`), after the kill committed; returns an unsubscribe. Other processes learn it
   * from {@linkcode Backend.onExternalKill} and {@linkcode Backend.workerLostAttempts}.
   */
  onKilled(listener: (kill: TaskKill) => void): () => void;
  /** Tells this process's kill listeners that the kill of a task committed. */
  notifyKilled(kill: TaskKill): void;
  /**
   * Calls `listener` with the id of a `running` task soon after any process kills it (`''`:
   * check every running task), if the backend can tell: PostgreSQL notifies in the kill's
   * transaction (LISTEN, on the connection the push wake-ups use); SQLite never calls it (its
   * workers' checks find kills). Returns an unsubscribe. The checks stay the fallback.
   */
  onExternalKill(listener: (id: string) => void): () => void;
  /** Calls `listener` when a task of `queue` is pushed in this process; returns an unsubscribe. */
  onPushed(queue: string, listener: () => void): () => void;
  /** Tells this process's listeners of `queue` that tasks were pushed. */
  notifyPushed(queue: string): void;
  /**
   * Calls `listener` soon after another process commits (SQLite: a file watch, any commit;
   * PostgreSQL: LISTEN, a commit that pushed to `queue`, or to any queue when it is absent);
   * returns an unsubscribe. Polling stays the fallback.
   */
  onExternalCommit(listener: () => void, queue?: string): () => void;

  /** Whether `error`, thrown by an operation, means the database has no room left. */
  isStorageFull(error: unknown): boolean;

  /** Closes the connection (the backend is unusable after). */
  close(): Promise<void>;
}
