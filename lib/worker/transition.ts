import type { RunEffect } from "../backend/types.ts";

/**
 * What a flow's handler returns instead of a plain value: the step's result, plus the writes
 * (the next steps, the run's completion) that must commit in the same transaction as the step's
 * ack. If the ack is fenced off (the task was rescued or killed meanwhile) the writes are
 * skipped; if they throw, the attempt is recorded as failed and retried.
 */
export class Transition {
  /**
   * @param result the step's result, stored like a handler's return value
   * @param effects the writes, run in order inside the ack's transaction
   */
  constructor(
    readonly result: unknown,
    readonly effects: readonly RunEffect[],
  ) {}
}

/** Something a worker can run that is not a plain handler: a workflow or a DAG. */
export interface TaskFlow<T> {
  /** Returns the handler that runs the flow's steps on tasks of `storage`'s queue. */
  // deno-lint-ignore no-explicit-any
  toHandler(storage: any): (args: T, ctx: any) => unknown;
}
