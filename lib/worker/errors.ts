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
