import type {
  QueueLimits,
  RunListRow,
  RunRow,
  RunStatus,
  TaskRow,
  TaskStatus,
  WorkerListRow,
} from "../backend/types.ts";
import { stepNodeKey, type WorkflowGraph } from "./graph.ts";
import type { Codec } from "./codec.ts";
import { messageOf, type TaskError } from "./error_text.ts";
import { progressOf, type TaskProgress } from "./reports.ts";

export { messageOf, serializeError, type TaskError } from "./error_text.ts";

/** A task as read back from the database. Times are epoch milliseconds. */
export interface TaskRecord<T = unknown> {
  id: string;
  queue: string;
  status: TaskStatus;
  /** The decoded arguments (`undefined` when they cannot be decoded: see `decodeError`). */
  args: T;
  /** How many times it has started. */
  attempts: number;
  maxAttempts: number;
  priority: number;
  /** Earliest time it may run (for `failed`: when the retry is due). */
  runAt: number;
  createdAt: number;
  /** The worker that claimed it last. */
  lockBy: string | null;
  lockAt: number | null;
  /** When its last attempt ended. */
  doneAt: number | null;
  /** What the handler returned (decoded), for `done` tasks. */
  lastResult: unknown;
  /** The last attempt's error. */
  lastError: TaskError | undefined;
  meta: Record<string, unknown>;
  /** The workflow run the task belongs to, if any. */
  runId: string | null;
  /**
   * The unique key it was pushed with, if it was a unique push (see `UniqueOptions`): the
   * caller's key, or `args:sha256:…` for a key made from its arguments.
   */
  uniqueKey?: string;
  /** The task's group (see `PushOptions.group`), when it has one. */
  group?: string;
  /** Why `args` or `lastResult` could not be decoded, if so. */
  decodeError?: string;
  /**
   * The last progress its handler reported (`ctx.progress`), with the attempt that reported it;
   * absent when none did. Read by `fetchById` and `waitFor`, not by listings.
   */
  progress?: TaskProgress;
  /**
   * Only from `listTasks({ previewBytes })`: the values longer than `previewBytes`, which were
   * not read whole (`args` or `lastResult` is then `undefined`). Read the task with `fetchById`
   * for them.
   */
  cut?: { args?: CutValue; lastResult?: CutValue };
}

/** A value a listing did not read whole: see {@linkcode TaskRecord.cut}. */
export interface CutValue {
  /** The whole value's size as stored (encoded by the codec), in bytes. */
  bytes: number;
  /**
   * Its first `previewBytes` bytes as text (less a character cut in two), when the codec writes
   * text (JSON); absent for other codecs.
   */
  text?: string;
}

/** A registered worker. */
export interface WorkerInfo {
  name: string;
  queue: string;
  host: string;
  pid: number;
  startedAt: number;
  lastSeen: number;
  stoppedAt: number | null;
  concurrency: number;
  /** Running, heart-beating, and (on this host) its process exists. */
  alive: boolean;
}

/** Counts of tasks per state. */
export type StatusCounts = Record<TaskStatus, number> & { total: number };

/** One queue's overview. */
export interface QueueInfo {
  name: string;
  counts: StatusCounts;
  /** `run_at` of the oldest task that is due and waiting, if any. */
  oldestDueAt: number | null;
  /** Workers registered on the queue that are alive. */
  aliveWorkers: number;
  /** Whether the queue is paused (see `Admin.pauseQueue`). */
  paused: boolean;
  /** The queue's limits (`{}`: none; see `Admin.setQueueLimits`). */
  limits: QueueLimits;
}

/** Zero counts. */
export function emptyCounts(): StatusCounts {
  return { pending: 0, queued: 0, running: 0, done: 0, failed: 0, killed: 0, total: 0 };
}

/** Decodes a stored row with a codec, never throwing on bad bytes. */
export function toTaskRecord<T>(row: TaskRow, codec: Codec): TaskRecord<T> {
  let decodeError: string | undefined;
  let args: unknown;
  try {
    args = codec.decode(row.args);
  } catch (error) {
    decodeError = `Cannot decode arguments with the ${codec.name} codec: ${messageOf(error)}`;
  }
  let lastResult: unknown;
  if (row.last_result !== null) {
    try {
      lastResult = codec.decode(row.last_result);
    } catch (error) {
      decodeError ??= `Cannot decode result with the ${codec.name} codec: ${messageOf(error)}`;
    }
  }
  const record: TaskRecord<T> = {
    id: row.id,
    queue: row.queue,
    status: row.status,
    args: args as T,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    priority: row.priority,
    runAt: row.run_at,
    createdAt: row.created_at,
    lockBy: row.lock_by,
    lockAt: row.lock_at,
    doneAt: row.done_at,
    lastResult,
    lastError: row.last_error === null ? undefined : parseError(row.last_error),
    meta: row.meta === null ? {} : JSON.parse(row.meta),
    runId: row.run_id ?? null,
  };
  if (row.unique_key != null) record.uniqueKey = row.unique_key;
  if (row.group_key !== null && row.group_key !== undefined) record.group = row.group_key;
  if (decodeError !== undefined) record.decodeError = decodeError;
  const progress = progressOf(row);
  if (progress !== undefined) record.progress = progress;
  return record;
}

/** Converts a listed worker row (the backend judged whether it is alive). */
export function toWorkerInfo(row: WorkerListRow): WorkerInfo {
  return {
    name: row.name,
    queue: row.queue,
    host: row.host,
    pid: row.pid,
    startedAt: row.started_at,
    lastSeen: row.last_seen,
    stoppedAt: row.stopped_at,
    concurrency: row.concurrency,
    alive: row.alive,
  };
}

function parseError(text: string): TaskError {
  try {
    return JSON.parse(text) as TaskError;
  } catch {
    return { name: "Error", message: text };
  }
}

/** One task of a workflow run, as `workflowRun()` reports it. */
export interface StepRecord {
  taskId: string;
  /** Its position in the workflow (what the workflow layer wrote: `{ i: 2 }`, `{ node: "x" }`). */
  step: unknown;
  /** The node of the run's `graph` it ran: a step index (`"2"`) or a DAG node's name. */
  node: string | null;
  status: TaskStatus;
  attempts: number;
  maxAttempts: number;
  /** The step's output (decoded). */
  result: unknown;
  error: TaskError | undefined;
  runAt: number;
  doneAt: number | null;
}

/** What a run record and a run in a listing both say of a workflow run. */
export interface RunHeader {
  id: string;
  queue: string;
  /** The workflow's name, once a worker has run a step. */
  workflow: string | null;
  status: RunStatus;
  createdAt: number;
  doneAt: number | null;
  /** The error of the step that failed the run. */
  error: TaskError | undefined;
}

function toRunHeader(row: Omit<RunRow, "result" | "graph">): RunHeader {
  return {
    id: row.id,
    queue: row.queue,
    workflow: row.workflow,
    status: row.status,
    createdAt: row.created_at,
    doneAt: row.done_at,
    error: row.error === null ? undefined : parseError(row.error),
  };
}

/** A workflow run: its state, its final result, and every task it ran. */
export interface RunRecord<R = unknown> extends RunHeader {
  /** The last step's output, for a `done` run. */
  result: R | undefined;
  /** The workflow's shape, once a worker has run one of its steps; `null` before. */
  graph: WorkflowGraph | null;
  /** Its tasks, oldest first. */
  steps: StepRecord[];
}

/** Decodes a run and its tasks. */
export function toRunRecord<R>(run: RunRow, tasks: readonly TaskRow[], codec: Codec): RunRecord<R> {
  const decode = (bytes: Uint8Array | null): unknown => {
    if (bytes === null) return undefined;
    try {
      return codec.decode(bytes);
    } catch {
      return undefined;
    }
  };
  const graph = parseGraph(run.graph);
  return {
    ...toRunHeader(run),
    result: decode(run.result) as R | undefined,
    graph,
    steps: tasks.map((task) => {
      const step = task.step === null ? null : JSON.parse(task.step);
      return {
        taskId: task.id,
        step,
        node: stepNodeKey(step, graph),
        status: task.status,
        attempts: task.attempts,
        maxAttempts: task.max_attempts,
        result: decode(task.last_result),
        error: task.last_error === null ? undefined : parseError(task.last_error),
        runAt: task.run_at,
        doneAt: task.done_at,
      };
    }),
  };
}

function parseGraph(text: string | null | undefined): WorkflowGraph | null {
  if (text === null || text === undefined) return null;
  try {
    return JSON.parse(text) as WorkflowGraph;
  } catch {
    return null;
  }
}

/** A workflow run in a listing: its state and how many of its tasks are in which state. */
export interface RunSummary extends RunHeader {
  /** Its tasks: all, done, still to finish (pending, queued, running, failed), killed. */
  tasks: { total: number; done: number; active: number; killed: number };
}

/** Converts a listing row. */
export function toRunSummary(row: RunListRow): RunSummary {
  return {
    ...toRunHeader(row),
    tasks: {
      total: row.tasks,
      done: row.tasks_done,
      active: row.tasks_active,
      killed: row.tasks_killed,
    },
  };
}
