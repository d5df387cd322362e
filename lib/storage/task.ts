import { messageOf } from "./error_text.ts";
import { type BackoffOptions, validateBackoff } from "./backoff.ts";
import { type ResolvedUnique, resolveUnique, type UniqueOptions } from "./unique.ts";
import { groupKeyProblem } from "./limits.ts";

/** Options for one push; every field is optional. */
export interface PushOptions {
  /** Run no earlier than this many milliseconds after the push. */
  runAfter?: number;
  /** Run no earlier than this time (a `Date` or epoch milliseconds). */
  runAt?: Date | number;
  /** Higher runs first. @default {0} */
  priority?: number;
  /** How many times the task may run before it is `killed`. @default {5} */
  maxAttempts?: number;
  /** The task's id; a ULID is generated when absent. */
  id?: string;
  /** Free-form metadata stored beside the task (JSON). */
  meta?: Record<string, unknown>;
  /** This task's retry backoff, overriding the worker's. */
  backoff?: BackoffOptions;
  /**
   * Push it only if no earlier task of the queue with the same key (by default: the same
   * encoded arguments) blocks it; otherwise insert nothing and answer that task's id. See
   * {@linkcode UniqueOptions} for the rules and defaults.
   */
  unique?: UniqueOptions;
  /**
   * The group the task belongs to, e.g. a customer: with the queue's `groupConcurrency` limit
   * (see `storage.setLimits`), at most that many tasks of one group run at once, while tasks of
   * other groups go on. No group when absent.
   */
  group?: string;
}

/** The default number of attempts, everywhere. */
export const DEFAULT_MAX_ATTEMPTS = 5;

/**
 * A task to push: arguments plus scheduling options. Build one with {@linkcode Task.builder}.
 *
 * @example Usage
 * ```ts
 * import { Task } from "@apalis/sqlite";
 *
 * const task = Task.builder({ to: "a@b.c" }).runAfter(1000).priority(1).maxAttempts(3).build();
 * if (task.options.priority !== 1) throw new Error("unexpected");
 * ```
 */
export class Task<T = unknown> {
  /** The arguments the handler receives. */
  readonly args: T;
  /** Scheduling and identity options. */
  readonly options: Readonly<PushOptions>;

  /**
   * @param args the handler's arguments
   * @param options scheduling and identity options
   */
  constructor(args: T, options: PushOptions = {}) {
    this.args = args;
    this.options = Object.freeze({ ...options });
  }

  /** Starts building a task around `args`. */
  static builder<T>(args: T): TaskBuilder<T> {
    return new TaskBuilder(args);
  }
}

/** Builds a {@linkcode Task} step by step. */
export class TaskBuilder<T> {
  #args: T;
  #options: PushOptions = {};

  /** @param args the handler's arguments */
  constructor(args: T) {
    this.#args = args;
  }

  /** Run no earlier than `ms` milliseconds after the push. */
  runAfter(ms: number): this {
    this.#options.runAfter = ms;
    delete this.#options.runAt;
    return this;
  }

  /** Run no earlier than `time`. */
  runAt(time: Date | number): this {
    this.#options.runAt = time;
    delete this.#options.runAfter;
    return this;
  }

  /** Higher runs first (default 0). */
  priority(priority: number): this {
    this.#options.priority = priority;
    return this;
  }

  /** How many times the task may run before it is killed (default 5). */
  maxAttempts(maxAttempts: number): this {
    this.#options.maxAttempts = maxAttempts;
    return this;
  }

  /** Sets the id (a ULID is generated otherwise). */
  id(id: string): this {
    this.#options.id = id;
    return this;
  }

  /** Adds one metadata entry. */
  meta(key: string, value: unknown): this {
    this.#options.meta = { ...this.#options.meta, [key]: value };
    return this;
  }

  /** Sets this task's retry backoff, overriding the worker's. */
  backoff(backoff: BackoffOptions): this {
    this.#options.backoff = backoff;
    return this;
  }

  /**
   * Makes the push unique (see {@linkcode UniqueOptions}): a duplicate pushes nothing and
   * answers the earlier task's id.
   *
   * @example One digest per customer and hour
   * ```ts
   * import { Task } from "@apalis/sqlite";
   *
   * const task = Task.builder({ customer: 42 }).unique({ periodMs: 3_600_000 }).build();
   * if (task.options.unique?.periodMs !== 3_600_000) throw new Error("unexpected");
   * ```
   */
  unique(options: UniqueOptions = {}): this {
    this.#options.unique = options;
    return this;
  }

  /**
   * Puts the task in a group (a customer, a tenant), counted by the queue's `groupConcurrency`
   * limit.
   *
   * @example One at a time per customer
   * ```ts
   * import { Task } from "@apalis/sqlite";
   *
   * const task = Task.builder({ invoice: 7 }).group("customer-42").build();
   * if (task.options.group !== "customer-42") throw new Error("unexpected");
   * ```
   */
  group(key: string): this {
    this.#options.group = key;
    return this;
  }

  /** Returns the task. */
  build(): Task<T> {
    return new Task(this.#args, this.#options);
  }
}

/** Push options checked and resolved against the push time. */
export interface ResolvedPush {
  id: string | undefined;
  runAt: number;
  priority: number;
  maxAttempts: number;
  meta: string | null;
  backoff: string | null;
  /** The unique options, checked and with their defaults (the key still to make, if absent). */
  unique: ResolvedUnique | undefined;
  group: string | null;
}

function invalidPush(queue: string, field: string, rule: string, value: unknown): never {
  throw new RangeError(
    `Cannot push task to queue '${queue}' as '${field}' must be ${rule}: current value is ${
      typeof value === "string" ? JSON.stringify(value) : String(value)
    }`,
  );
}

/** Validates push options, throwing a `TypeError`/`RangeError` that names the field. */
export function resolvePush(queue: string, options: PushOptions, now: number): ResolvedPush {
  const priority = options.priority ?? 0;
  if (!Number.isSafeInteger(priority)) invalidPush(queue, "priority", "an integer", priority);
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) {
    invalidPush(queue, "maxAttempts", "an integer >= 1", maxAttempts);
  }
  let runAt = now;
  if (options.runAt !== undefined) {
    runAt = options.runAt instanceof Date ? options.runAt.getTime() : options.runAt;
    if (!Number.isFinite(runAt)) {
      invalidPush(queue, "runAt", "a valid date or epoch milliseconds", options.runAt);
    }
    runAt = Math.round(runAt);
  } else if (options.runAfter !== undefined) {
    if (!Number.isFinite(options.runAfter) || options.runAfter < 0) {
      invalidPush(queue, "runAfter", "a number of milliseconds >= 0", options.runAfter);
    }
    runAt = now + Math.round(options.runAfter);
  }
  if (options.id !== undefined && (typeof options.id !== "string" || options.id.length === 0)) {
    invalidPush(queue, "id", "a non-empty string", options.id);
  }
  let meta: string | null = null;
  if (options.meta !== undefined) {
    if (typeof options.meta !== "object" || options.meta === null || Array.isArray(options.meta)) {
      throw new TypeError(
        `Cannot push task to queue '${queue}' as 'meta' must be a plain object`,
      );
    }
    meta = Object.keys(options.meta).length ? metaJson(queue, options.meta) : null;
  }
  const backoff = options.backoff === undefined
    ? null
    : JSON.stringify(validateBackoff(options.backoff, `task in queue '${queue}'`));
  const unique = options.unique === undefined ? undefined : resolveUnique(queue, options.unique);
  let group: string | null = null;
  if (options.group !== undefined) {
    const problem = groupKeyProblem(options.group);
    if (problem !== undefined) invalidPush(queue, "group", problem, options.group);
    group = options.group;
  }
  return { id: options.id, runAt, priority, maxAttempts, meta, backoff, unique, group };
}

/** The meta as JSON, or a `TypeError` naming the first key JSON cannot encode and why. */
function metaJson(queue: string, meta: Record<string, unknown>): string {
  try {
    return JSON.stringify(meta);
  } catch (error) {
    // Only on failure: find the key whose value JSON refuses (a BigInt, a cycle, a toJSON that
    // throws).
    let where = "";
    for (const key of Object.keys(meta)) {
      try {
        JSON.stringify(meta[key]);
      } catch {
        where = ` at key '${key}'`;
        break;
      }
    }
    throw new TypeError(
      `Cannot push task to queue '${queue}' as its 'meta' cannot be encoded as JSON${where}: ${
        messageOf(error)
      }`,
      { cause: error },
    );
  }
}
