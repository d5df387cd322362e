import { AssertionError } from "node:assert";
import { inspect } from "node:util";
import type { TaskStatus } from "../backend/types.ts";
import type { Admin } from "../storage/admin.ts";
import type { TaskRecord } from "../storage/records.ts";
import { Storage } from "../storage/storage.ts";
import { matches } from "./matching.ts";

/** `T` with every key optional, at any depth (arrays are matched whole). */
export type DeepPartial<T> = T extends readonly unknown[] ? T
  : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> }
  : T;

/** Which tasks {@linkcode enqueuedTasks}, {@linkcode assertEnqueued} and {@linkcode refuteEnqueued} look at. */
export interface EnqueuedFilter<T = unknown> {
  /**
   * Only this queue. @default {the storage's queue; every queue for an `Admin` that is not a
   * storage}
   */
  queue?: string;
  /**
   * The arguments: a value they must match (objects match on the keys given, at any depth), or
   * a predicate.
   */
  args?: DeepPartial<T> | ((args: T) => boolean);
  /** Metadata the task must have (matched like `args`). */
  meta?: Record<string, unknown>;
  /** The task's priority. */
  priority?: number;
  /**
   * The states to look at. @default {["pending"]}: waiting to run, due or scheduled (add
   * `"failed"` for tasks waiting for a retry)
   */
  status?: TaskStatus | readonly TaskStatus[];
  /** Only tasks due by this time (epoch ms or Date), or only those due after it (`{ after }`). */
  due?: number | Date | { after: number | Date };
}

/** Reads this many tasks per page while looking. */
const PAGE = 500;
/** Looks at no more than this many tasks: a test database holds far fewer. */
const MAX_LOOKED_AT = 100_000;

/**
 * The tasks that match `filter`, oldest first.
 *
 * @example Usage
 * ```ts
 * import { enqueuedTasks, tempDatabase } from "@apalis/sqlite/testing";
 *
 * await using db = await tempDatabase();
 * const emails = db.storage<{ to: string }>("email");
 * await emails.push({ to: "a@b.c" });
 * const [task] = await enqueuedTasks(emails, { args: { to: "a@b.c" } });
 * if (task?.status !== "pending") throw new Error("unexpected");
 * ```
 */
export async function enqueuedTasks<T>(
  storage: Admin<T>,
  filter: EnqueuedFilter<T> = {},
): Promise<TaskRecord<T>[]> {
  const queue = filter.queue ?? (storage instanceof Storage ? storage.queue : undefined);
  const statuses = filter.status === undefined
    ? ["pending" as const]
    : typeof filter.status === "string"
    ? [filter.status]
    : filter.status;
  const found: TaskRecord<T>[] = [];
  for (const status of statuses) {
    for (let page = 1;; page++) {
      const options = { status, page, pageSize: PAGE, ...(queue === undefined ? {} : { queue }) };
      const tasks = await storage.listTasks(options);
      for (const task of tasks) if (isMatch(task, filter)) found.push(task);
      if (tasks.length < PAGE) break;
      if (page * PAGE >= MAX_LOOKED_AT) {
        throw new RangeError(
          `Cannot look for enqueued tasks: more than ${MAX_LOOKED_AT} '${status}' tasks${
            queue === undefined ? "" : ` in queue '${queue}'`
          }; use a database of the test's own (tempDatabase)`,
        );
      }
    }
  }
  return found.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * Asserts that tasks matching `expected` are enqueued: `count` of them (exactly), or at least
 * one. Returns them, oldest first. The error lists what the queue holds instead.
 *
 * @example Usage
 * ```ts
 * import { assertEnqueued, tempDatabase } from "@apalis/sqlite/testing";
 *
 * await using db = await tempDatabase();
 * const emails = db.storage<{ to: string; template: string }>("email");
 * await emails.push({ to: "a@b.c", template: "welcome" });
 * await assertEnqueued(emails, { args: { template: "welcome" }, count: 1 });
 * ```
 */
export async function assertEnqueued<T>(
  storage: Admin<T>,
  expected: EnqueuedFilter<T> & { count?: number } = {},
): Promise<TaskRecord<T>[]> {
  const { count, ...filter } = expected;
  if (count !== undefined && !(Number.isSafeInteger(count) && count >= 0)) {
    throw new RangeError(`'count' must be an integer >= 0: current value is ${count}`);
  }
  const found = await enqueuedTasks(storage, filter);
  const holds = count === undefined ? found.length > 0 : found.length === count;
  if (!holds) {
    const wanted = count === undefined
      ? "at least 1 task"
      : `${count} task${count === 1 ? "" : "s"}`;
    throw new AssertionError({
      message: `Expected ${wanted} ${
        describeFilter(storage, filter)
      }, found ${found.length}.${await held(storage, filter)}`,
    });
  }
  return found;
}

/**
 * Asserts that no task matching `filter` is enqueued.
 *
 * @example Usage
 * ```ts
 * import { refuteEnqueued, tempDatabase } from "@apalis/sqlite/testing";
 *
 * await using db = await tempDatabase();
 * const emails = db.storage<{ to: string }>("email");
 * await refuteEnqueued(emails, { args: { to: "a@b.c" } });
 * ```
 */
export async function refuteEnqueued<T>(
  storage: Admin<T>,
  filter: EnqueuedFilter<T> = {},
): Promise<void> {
  const found = await enqueuedTasks(storage, filter);
  if (found.length > 0) {
    throw new AssertionError({
      message: `Expected no task ${describeFilter(storage, filter)}, found ${found.length}: ${
        found.slice(0, 5).map(describeTask).join("; ")
      }`,
    });
  }
}

function isMatch<T>(task: TaskRecord<T>, filter: EnqueuedFilter<T>): boolean {
  if (filter.priority !== undefined && task.priority !== filter.priority) return false;
  if (filter.meta !== undefined && !matches(task.meta, filter.meta)) return false;
  if (filter.due !== undefined) {
    const { due } = filter;
    if (typeof due === "object" && !(due instanceof Date)) {
      if (!(task.runAt > +due.after)) return false;
    } else if (!(task.runAt <= +due)) return false;
  }
  if ("args" in filter) {
    const { args } = filter;
    if (typeof args === "function") {
      if (!(args as (args: T) => boolean)(task.args)) return false;
    } else if (!matches(task.args, args)) return false;
  }
  return true;
}

function describeFilter<T>(storage: Admin<T>, filter: EnqueuedFilter<T>): string {
  const queue = filter.queue ?? (storage instanceof Storage ? storage.queue : undefined);
  const parts = [queue === undefined ? "in any queue" : `in queue '${queue}'`];
  const status = filter.status ?? "pending";
  parts.push(`with status ${inspect(status)}`);
  const { status: _status, queue: _queue, ...rest } = filter;
  if (Object.keys(rest).length > 0) parts.push(`matching ${inspect(rest, { depth: 6 })}`);
  return parts.join(" ");
}

/** What the filter's queue and states hold, for the error: a hint at what went wrong. */
async function held<T>(storage: Admin<T>, filter: EnqueuedFilter<T>): Promise<string> {
  const { queue, status } = filter;
  const all = await enqueuedTasks(storage, {
    ...(queue === undefined ? {} : { queue }),
    ...(status === undefined ? {} : { status }),
  });
  if (all.length === 0) return " Nothing is enqueued there.";
  const shown = all.slice(0, 10).map(describeTask).join("\n  ");
  const more = all.length > 10 ? `\n  … and ${all.length - 10} more` : "";
  return ` Enqueued there (${all.length}):\n  ${shown}${more}`;
}

function describeTask<T>(task: TaskRecord<T>): string {
  const meta = Object.keys(task.meta).length > 0 ? ` meta ${inspect(task.meta)}` : "";
  return `${task.id} [${task.status}, priority ${task.priority}, due ${
    new Date(task.runAt).toISOString()
  }] args ${inspect(task.args, { depth: 6, breakLength: Infinity })}${meta}`;
}
