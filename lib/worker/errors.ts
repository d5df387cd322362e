import { describeValue } from "../storage/error_text.ts";

/**
 * Throw it from a handler to kill the task at once, without further attempts.
 *
 * @example Usage
 * ```ts
 * import { AbortError } from "@apalis/sqlite";
 *
 * function handler(args: { email?: string }) {
 *   if (!args.email) throw new AbortError("No email address: retrying cannot help");
 * }
 * ```
 */
export class AbortError extends Error {
  /**
   * @param message why the task is abandoned
   * @param options the underlying cause
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "AbortError";
  }
}

/** The error stored when an attempt runs past the worker's timeout. */
export class TaskTimeoutError extends Error {
  /** @param timeoutMs the limit that was exceeded */
  constructor(timeoutMs: number) {
    super(`Task timed out after ${timeoutMs} ms`);
    this.name = "TaskTimeoutError";
  }
}

/**
 * The abort reason of a handler's `ctx.signal` when its task is killed by hand while it runs
 * (`storage.kill(id, reason)`, `apalis kill`, the dashboard): at once in the process that killed
 * it, within about a second in any other process or host. The task's stored error is a
 * `KilledError` too, with the reason as its message. What the attempt returns afterwards is
 * discarded.
 *
 * @example Usage
 * ```ts
 * import { KilledError } from "@apalis/sqlite";
 *
 * const error = new KilledError("01JH4Q8ZK3V7X2M9N5P6R8S0TB", "customer cancelled");
 * if (error.message !== "Task '01JH4Q8ZK3V7X2M9N5P6R8S0TB' was killed: customer cancelled") {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export class KilledError extends Error {
  /** The killed task. */
  readonly taskId: string;
  /** The reason given to the kill. */
  readonly reason: string;
  /**
   * @param taskId the killed task
   * @param reason the reason given to the kill
   */
  constructor(taskId: string, reason: string) {
    super(`Task '${taskId}' was killed: ${reason}`);
    this.name = "KilledError";
    this.taskId = taskId;
    this.reason = reason;
  }
}

/**
 * The abort reason of a handler's `ctx.signal` when its attempt is no longer its worker's for
 * another reason than a kill: the task was rescued as an orphan (the worker's heartbeat went
 * stale), retried or deleted meanwhile. The attempt's outcome is discarded.
 *
 * @example Usage
 * ```ts
 * import { AttemptLostError } from "@apalis/sqlite";
 *
 * const error = new AttemptLostError("01JH4Q8ZK3V7X2M9N5P6R8S0TB", 2, "w1", "it was deleted");
 * if (!error.message.endsWith("no longer held by worker 'w1': it was deleted")) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export class AttemptLostError extends Error {
  /** The task. */
  readonly taskId: string;
  /** The attempt that lost its task. */
  readonly attempt: number;
  /**
   * @param taskId the task
   * @param attempt the attempt that lost it
   * @param worker the worker that ran it
   * @param why where the task went
   */
  constructor(taskId: string, attempt: number, worker: string, why: string) {
    super(`Task '${taskId}' attempt ${attempt} is no longer held by worker '${worker}': ${why}`);
    this.name = "AttemptLostError";
    this.taskId = taskId;
    this.attempt = attempt;
  }
}

/** The error stored when a shutdown interrupts an attempt that did not finish in the grace period. */
export class ShutdownError extends Error {
  /** @param worker the worker that shut down */
  constructor(worker: string) {
    super(`Interrupted: worker '${worker}' shut down before the task finished`);
    this.name = "ShutdownError";
  }
}

/** Thrown when a worker name is held by an instance that is demonstrably alive. */
export class WorkerNameTakenError extends Error {
  /**
   * @param name the worker name
   * @param detail who holds it
   */
  constructor(name: string, detail: string) {
    super(`Cannot register worker '${name}': ${detail}`);
    this.name = "WorkerNameTakenError";
  }
}

/** Thrown (and emitted) when a worker cannot go on: its name was taken over, the database closed. */
export class WorkerFatalError extends Error {
  /**
   * @param message what happened
   * @param options the cause
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "WorkerFatalError";
  }
}

/**
 * What a failed attempt records when the handler (or a middleware, a workflow step, a DAG node)
 * throws or rejects with no value, `undefined` or `null`: the attempt failed all the same, and is
 * retried and finally killed like any other failure. Listeners receive it as the event's error.
 *
 * @example Usage
 * ```ts
 * import { NonError } from "@apalis/sqlite";
 *
 * const error = new NonError(undefined, "rejected with");
 * if (error.message !== "The handler rejected with undefined") throw new Error("unexpected");
 * ```
 */
export class NonError extends Error {
  /** What was thrown (`undefined` or `null`). */
  readonly value: unknown;
  /**
   * @param value what was thrown
   * @param how how it came: thrown synchronously, or as a rejection
   */
  constructor(value: unknown, how: "threw" | "rejected with") {
    super(`The handler ${how} ${describeValue(value)}`);
    this.name = "NonError";
    this.value = value;
  }
}
