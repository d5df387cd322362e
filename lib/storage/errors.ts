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

/**
 * Thrown by `schedule()` for input it refuses (a bad cron expression or time zone, an unknown
 * catch-up mode, a bad priority…), before anything is written. The message names the schedule,
 * the field and the value.
 *
 * @example Usage
 * ```ts
 * import { InvalidScheduleError, openDatabase, SqliteStorage } from "@apalis/sqlite";
 *
 * const db = openDatabase(":memory:");
 * SqliteStorage.setup(db);
 * const storage = new SqliteStorage(db, "reports");
 * try {
 *   await storage.schedule("nightly", "0 3 * * *", null, { timezone: "Mars/Olympus" });
 * } catch (error) {
 *   if (!(error instanceof InvalidScheduleError) || error.field !== "timezone") throw error;
 * }
 * if ((await storage.listSchedules()).length !== 0) throw new Error("nothing is written");
 * db.close();
 * ```
 */
export class InvalidScheduleError extends TypeError {
  /** The schedule's name. */
  readonly schedule: string;
  /** The field that was refused: `name`, `cron`, `timezone`, `catchUp`, `args`, … */
  readonly field: string;
  /**
   * @param schedule the schedule's name
   * @param queue its queue
   * @param field the refused field
   * @param reason why, naming the value
   */
  constructor(schedule: string, queue: string, field: string, reason: string) {
    super(`Cannot schedule '${schedule}' on queue '${queue}': ${reason}`);
    this.name = "InvalidScheduleError";
    this.schedule = schedule;
    this.field = field;
  }
}

/**
 * Thrown by `schedule()` when another queue has a schedule of that name (names are unique in a
 * database, as the ids of the tasks they enqueue derive from them). Nothing is written.
 */
export class ScheduleNameTakenError extends Error {
  /** The schedule's name. */
  readonly schedule: string;
  /** The queue that has it. */
  readonly owner: string;
  /**
   * @param schedule the name
   * @param queue the queue it was to be scheduled on
   * @param owner the queue that has it
   */
  constructor(schedule: string, queue: string, owner: string) {
    super(
      `Cannot schedule '${schedule}' on queue '${queue}': queue '${owner}' has a schedule of that name (unschedule it there first, or choose another name)`,
    );
    this.name = "ScheduleNameTakenError";
    this.schedule = schedule;
    this.owner = owner;
  }
}
