import type { TaskStatus } from "../backend/types.ts";

/** What a task event says about the task. */
export interface TaskEventInfo {
  taskId: string;
  queue: string;
  /** 1-based attempt number. */
  attempt: number;
  maxAttempts: number;
  /** How long the attempt ran, in milliseconds. */
  durationMs: number;
}

/**
 * What a worker reports. `type` is one of `start`, `idle`, `heartbeat`, `success`, `error`,
 * `retention`, `stop`, `exit`.
 */
export type WorkerEvent =
  | { type: "start" }
  | { type: "idle" }
  | { type: "heartbeat"; rescued: number }
  | { type: "success"; task: TaskEventInfo; result: unknown }
  | {
    type: "error";
    /** The failed task; absent for errors of the worker itself (database, heartbeat). */
    task?: TaskEventInfo;
    error: unknown;
    /** What the attempt turned the task into: `failed` (will retry) or `killed`. */
    status?: Extract<TaskStatus, "failed" | "killed">;
    /** For `failed`: when the retry is due (epoch ms). */
    retryAt?: number;
  }
  | {
    /** A batch of the queue's retention deleted expired tasks (see `Config.setRetention`). */
    type: "retention";
    queue: string;
    /** Tasks deleted (those of the runs included). */
    tasks: number;
    /** Workflow runs deleted, each with all its tasks. */
    runs: number;
    /**
     * When the batch's transaction held the queue's retention lease (epoch ms; PostgreSQL: the
     * server's clock): no other worker deleted meanwhile.
     */
    heldFrom: number;
    heldTo: number;
  }
  | { type: "stop" }
  | { type: "exit"; error?: unknown };

/** The worker as seen by event listeners and handlers. */
export interface WorkerContext {
  /** The worker's name. */
  readonly name: string;
  /**
   * Starts a graceful shutdown and returns at once (a handler may call it: the worker exits after
   * that handler finishes). To wait for the exit, await `worker.run()` or `Worker.stop()`.
   */
  stop(): void;
}

/** Receives every event of a worker. Errors it throws are swallowed. */
export type EventListener = (ctx: WorkerContext, event: WorkerEvent) => void;
