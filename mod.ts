/**
 * A durable background task queue in one SQLite file, for Deno and Bun.
 *
 * Push tasks from anywhere, run workers in as many processes as you like on the same file, and
 * get at-least-once execution with persisted retry backoff, heartbeats and orphan recovery.
 *
 * @example Push a task and run a worker
 * ```ts
 * import { openDatabase, SqliteStorage, WorkerBuilder } from "@apalis/sqlite";
 *
 * const db = openDatabase(":memory:");
 * SqliteStorage.setup(db);
 * const emails = new SqliteStorage<{ to: string }>(db, "email");
 * const id = await emails.push({ to: "ada@example.com" });
 *
 * const worker = new WorkerBuilder("mailer")
 *   .backend(emails)
 *   .handleSignals(false)
 *   .build(async (email, ctx) => {
 *     ctx.worker.stop(); // a real worker keeps running
 *     return `sent to ${email.to}`;
 *   });
 * await worker.run();
 *
 * const [task] = await emails.waitFor([id]);
 * if (task?.lastResult !== "sent to ada@example.com") throw new Error("unexpected");
 * db.close();
 * ```
 *
 * The dashboard and Prometheus metrics are in `@apalis/sqlite/board`, PostgreSQL in
 * `@apalis/sqlite/postgres`, the MessagePack codec in `@apalis/sqlite/msgpack` and test helpers in
 * `@apalis/sqlite/testing`.
 *
 * @module
 */

export { DatabaseOpenError, openDatabase } from "./lib/sqlite/open.ts";
export { DatabaseBusyError } from "./lib/sqlite/busy.ts";
export { DatabaseFileError, type DatabaseFileProblem } from "./lib/sqlite/file_error.ts";
export { SchemaMissingError } from "./lib/sqlite/schema_missing.ts";
export type {
  Database,
  Durability,
  OpenDatabaseOptions,
  SqlRow,
  SqlValue,
} from "./lib/sqlite/types.ts";
export { SCHEMA_VERSION, SchemaVersionError } from "./lib/store/schema.ts";
export {
  RUN_STATUSES,
  type RunStatus,
  TASK_STATUSES,
  type TaskStatus,
} from "./lib/backend/types.ts";
export {
  Admin,
  type AdminOptions,
  type ListRunsOptions,
  type ListTasksOptions,
  type LogsOptions,
  type ThroughputPoint,
} from "./lib/storage/admin.ts";
export { Storage, type StorageOptions } from "./lib/storage/storage.ts";
export {
  MAX_LOG_BYTES,
  MAX_LOG_LINE_BYTES,
  MAX_LOG_LINES,
  MAX_PROGRESS_BYTES,
  type ProgressValue,
  type TaskLogLine,
  type TaskProgress,
} from "./lib/storage/reports.ts";
export { SqliteStorage, type SqliteStorageOptions } from "./lib/storage/sqlite_storage.ts";
export { Config } from "./lib/storage/config.ts";
export type { Retention, RetentionAge, RetentionOptions } from "./lib/storage/retention.ts";
export { SharedQueueError, SharedSqliteStorage } from "./lib/storage/shared.ts";
export {
  BackoffStrategy,
  type BackoffStrategyOptions,
  IntervalStrategy,
  MultiStrategy,
  type PollStrategy,
  type PollTicker,
  type Sleep,
  StrategyBuilder,
  StreamStrategy,
} from "./lib/storage/poll_strategy.ts";
export { type PushOptions, Task, TaskBuilder } from "./lib/storage/task.ts";
export {
  type PushResult,
  UNIQUE_STATES_PERIOD,
  UNIQUE_STATES_UNFINISHED,
  type UniqueOptions,
} from "./lib/storage/unique.ts";
export type { QueueFlow, QueueLimits, QueueLimitsChange } from "./lib/storage/limits.ts";
export { type Codec, JsonCodec } from "./lib/storage/codec.ts";
export { type Clock, systemClock } from "./lib/storage/clock.ts";
export type { Backoff, BackoffOptions } from "./lib/storage/backoff.ts";
export {
  DuplicateTaskError,
  InvalidScheduleError,
  RunNotFoundError,
  ScheduleNameTakenError,
  TaskNotFoundError,
  TaskStateError,
  WaitTimeoutError,
} from "./lib/storage/errors.ts";
export type {
  CutValue,
  QueueInfo,
  RunHeader,
  RunRecord,
  RunSummary,
  StatusCounts,
  StepRecord,
  TaskError,
  TaskRecord,
  WorkerInfo,
} from "./lib/storage/records.ts";
export type { WorkflowGraph } from "./lib/storage/graph.ts";
export {
  CATCH_UP_MODES,
  type CatchUp,
  type CronMeta,
  type ListSchedulesOptions,
  type ScheduleInfo,
  type ScheduleOptions,
} from "./lib/storage/schedules.ts";
export { type RetryOptions, WorkerBuilder } from "./lib/worker/worker_builder.ts";
export { type Handler, type Middleware, Worker } from "./lib/worker/worker.ts";
export { TaskContext } from "./lib/worker/context.ts";
export type {
  EventListener,
  TaskEventInfo,
  WorkerContext,
  WorkerEvent,
} from "./lib/worker/events.ts";
export {
  AbortError,
  AttemptLostError,
  KilledError,
  NonError,
  ShutdownError,
  TaskTimeoutError,
  WorkerFatalError,
  WorkerNameTakenError,
} from "./lib/worker/errors.ts";
export { Workflow } from "./lib/workflow/workflow.ts";
export type { TaskFlow } from "./lib/worker/transition.ts";
export { DagFlow, DagFlowError, type NodeFn, NodeHandle } from "./lib/workflow/dag.ts";
export type { FilterMapOptions } from "./lib/workflow/workflow.ts";
// What `Admin.metrics()` returns; the dashboard and the Prometheus text are in `./board`.
export type { DurationHistogram, MetricsSnapshot, QueueMetrics } from "./lib/storage/metrics.ts";
