/** Thrown when an operation names a task id that does not exist. */
export class TaskNotFoundError extends Error {
  /** The id that was not found. */
  readonly id: string;
  /** @param id the missing task id */
  constructor(id: string) {
    super(`Cannot find task '${id}': no task has this id`);
    this.name = "TaskNotFoundError";
    this.id = id;
  }
}

/** Thrown when an operation names a workflow run id that does not exist. */
export class RunNotFoundError extends Error {
  /** The id that was not found. */
  readonly id: string;
  /** @param id the missing run id */
  constructor(id: string) {
    super(`Cannot find workflow run '${id}': no run has this id`);
    this.name = "RunNotFoundError";
    this.id = id;
  }
}

/** Thrown when a task is not in a state the operation accepts. */
export class TaskStateError extends Error {
  /** The task's id. */
  readonly id: string;
  /** Its state when the operation was refused. */
  readonly status: string;
  /**
   * @param action what was attempted, e.g. "retry"
   * @param id the task id
   * @param status the task's current state
   */
  constructor(action: string, id: string, status: string) {
    super(`Cannot ${action} task '${id}': it is ${status}`);
    this.name = "TaskStateError";
    this.id = id;
    this.status = status;
  }
}

/** Thrown when a push uses an id that already exists. */
export class DuplicateTaskError extends Error {
  /** The duplicate id. */
  readonly id: string;
  /**
   * @param id the id that exists already
   * @param queue the queue pushed to
   */
  constructor(id: string, queue: string) {
    super(`Cannot push task '${id}' to queue '${queue}': a task with this id exists`);
    this.name = "DuplicateTaskError";
    this.id = id;
  }
}

/** Thrown by `waitFor` when tasks have not finished in time. */
export class WaitTimeoutError extends Error {
  /** The ids still unfinished. */
  readonly pending: readonly string[];
  /**
   * @param pending ids still unfinished
   * @param timeoutMs how long it waited
   */
  constructor(pending: readonly string[], timeoutMs: number) {
    super(
      `Cannot wait for tasks: ${pending.length} did not finish within ${timeoutMs} ms (first: '${
        pending[0]
      }')`,
    );
    this.name = "WaitTimeoutError";
    this.pending = pending;
  }
}
