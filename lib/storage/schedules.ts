/**
 * Cron schedules above the backend: their options and records, the checks `schedule()` makes
 * before writing, and the enqueueing of due ticks that every worker of a queue runs (safe when
 * they all do: the backend's compare-and-set lets one of them advance each tick).
 *
 * @module
 */
import type {
  Backend,
  CatchUp,
  NewTaskRow,
  ScheduleRow,
  ScheduleUpsert,
} from "../backend/types.ts";
import type { Codec } from "./codec.ts";
import { assertZone, dueTicks, NO_MORE_TICKS, parseCron, tickAfter, ticksFrom } from "./cron.ts";
import { InvalidScheduleError } from "./errors.ts";
import { describeValue, messageOf } from "./error_text.ts";
import { DEFAULT_MAX_ATTEMPTS } from "./task.ts";

export type { CatchUp };

/** The catch-up modes, in the order of how much they enqueue. */
export const CATCH_UP_MODES: readonly CatchUp[] = ["none", "latest", "all"];

/** Options of `Storage.schedule`; every field is optional. */
export interface ScheduleOptions {
  /**
   * The IANA time zone the expression is read in, e.g. `"Europe/Paris"` (daylight saving time
   * included). @default {"UTC"}
   */
  timezone?: string;
  /**
   * Ticks missed while no worker of the queue ran: `"none"` skips them (a tick runs only if
   * enqueued on time: at most a minute late, and before the next one falls due), `"latest"`
   * enqueues the most recent one, `"all"` enqueues each of them, at most the 1,000 most recent.
   * @default {"latest"}
   */
  catchUp?: CatchUp;
  /** The priority of each task it enqueues (higher runs first). @default {0} */
  priority?: number;
  /** The attempts of each task it enqueues. @default {5} */
  maxAttempts?: number;
  /**
   * Meta of each task it enqueues (JSON); the key `cron` is the schedule's own (see
   * {@linkcode CronMeta}).
   */
  meta?: Record<string, unknown>;
  /**
   * Paused: no worker enqueues its ticks. Scheduling it again unpaused resumes it from the next
   * tick after that moment: ticks of the pause are not caught up. @default {false}
   */
  paused?: boolean;
}

/**
 * What every task a schedule enqueues carries in its meta under `cron` (`ctx.meta.cron` in the
 * handler): the schedule's name and the tick it stands for, in epoch milliseconds. The task's id
 * is `cron:<name>:<tick>` and its due time is the tick.
 */
export interface CronMeta {
  schedule: string;
  tick: number;
}

/** A schedule, as `listSchedules()` reads it. */
export interface ScheduleInfo<T = unknown> {
  name: string;
  queue: string;
  /** The cron expression. */
  cron: string;
  /** The time zone it is read in. */
  timezone: string;
  /** The arguments of each task it enqueues (undefined when the codec cannot decode them). */
  args: T | undefined;
  catchUp: CatchUp;
  priority: number;
  maxAttempts: number;
  meta: Record<string, unknown>;
  paused: boolean;
  /**
   * The tick it enqueues next (epoch ms; in the past when no worker of the queue has run since);
   * null while paused or when the expression has no more ticks.
   */
  nextTick: number | null;
  /** The next ticks from `nextTick` on (as many as `upcoming` asked; none while paused). */
  upcoming: number[];
  /** The last tick it enqueued a task for, or null. */
  lastTick: number | null;
  /** The id of the last task it enqueued, or null. */
  lastTaskId: string | null;
  createdAt: number;
  updatedAt: number;
}

/** Options of `Admin.listSchedules`. */
export interface ListSchedulesOptions {
  /** Only this queue's (every queue's when absent; a storage's own queue by default). */
  queue?: string;
  /** How many next ticks to compute into `upcoming`. @default {3} */
  upcoming?: number;
}

const NAME_MAX = 200;

/**
 * The row `schedule()` writes, every input checked first: a refusal throws
 * {@linkcode InvalidScheduleError} naming the field and the value.
 */
export function scheduleRow<T>(
  input: {
    queue: string;
    name: string;
    cron: string;
    args: T;
    options: ScheduleOptions;
    codec: Codec;
    now: number;
  },
): ScheduleUpsert {
  const { queue, name, options, now } = input;
  const refuse = (field: string, reason: string): never => {
    throw new InvalidScheduleError(String(name), queue, field, reason);
  };
  if (typeof name !== "string" || name === "" || name.includes("\0") || name.length > NAME_MAX) {
    refuse(
      "name",
      `'name' must be a non-empty string of at most ${NAME_MAX} characters without NUL: current value is ${
        describeValue(name)
      }`,
    );
  }
  if (typeof input.cron !== "string") {
    refuse(
      "cron",
      `the cron expression must be a string: current value is ${describeValue(input.cron)}`,
    );
  }
  const cron = input.cron.trim();
  let timezone: string | null = null;
  if (options.timezone !== undefined) {
    try {
      if (typeof options.timezone !== "string" || options.timezone.trim() === "") throw 0;
      assertZone(options.timezone);
      timezone = options.timezone.trim();
    } catch {
      refuse(
        "timezone",
        `the time zone ${
          JSON.stringify(options.timezone)
        } is not one this runtime knows (an IANA name such as "Europe/Paris" or "UTC")`,
      );
    }
  }
  let next: number | null = null;
  try {
    next = tickAfter(parseCron(cron, timezone), now);
  } catch (error) {
    refuse("cron", `the cron expression ${JSON.stringify(cron)} is invalid: ${messageOf(error)}`);
  }
  if (next === null) {
    refuse("cron", `the cron expression ${JSON.stringify(cron)} has no tick after now`);
  }
  const catchUp = options.catchUp ?? "latest";
  if (!CATCH_UP_MODES.includes(catchUp)) {
    refuse(
      "catchUp",
      `'catchUp' must be one of ${CATCH_UP_MODES.join(", ")}: current value is ${
        describeValue(catchUp)
      }`,
    );
  }
  const priority = options.priority ?? 0;
  if (!Number.isSafeInteger(priority)) {
    refuse(
      "priority",
      `'priority' must be an integer: current value is ${describeValue(priority)}`,
    );
  }
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) {
    refuse(
      "maxAttempts",
      `'maxAttempts' must be an integer >= 1: current value is ${describeValue(maxAttempts)}`,
    );
  }
  const paused = options.paused ?? false;
  if (typeof paused !== "boolean") {
    refuse("paused", `'paused' must be a boolean: current value is ${describeValue(paused)}`);
  }
  let meta: string | null = null;
  if (options.meta !== undefined) {
    const value = options.meta;
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      refuse("meta", "'meta' must be a plain object");
    }
    if (Object.hasOwn(value, "cron")) {
      refuse("meta", "'meta' must not have the key 'cron': it holds the schedule and the tick");
    }
    try {
      meta = Object.keys(value).length > 0 ? JSON.stringify(value) : null;
    } catch (error) {
      refuse("meta", `its 'meta' cannot be encoded as JSON: ${messageOf(error)}`);
    }
  }
  let args: Uint8Array | string;
  try {
    const { codec } = input;
    args = codec.encodeText ? codec.encodeText(input.args) : codec.encode(input.args);
  } catch (error) {
    return refuse(
      "args",
      `the ${input.codec.name} codec cannot encode its arguments: ${messageOf(error)}`,
    );
  }
  return {
    name,
    queue,
    cron,
    timezone,
    args,
    priority,
    maxAttempts,
    meta,
    catchUp,
    paused,
    nextAt: next!,
    now,
  };
}

/** A stored schedule as a record, with its `upcoming` next ticks. */
export function toScheduleInfo<T>(
  row: ScheduleRow,
  codec: Codec,
  upcoming: number,
): ScheduleInfo<T> {
  let args: T | undefined;
  try {
    args = codec.decode(row.args) as T;
  } catch {
    args = undefined; // a listing shows what it can
  }
  const running = !row.paused && row.next_at !== NO_MORE_TICKS;
  let ticks: number[] = [];
  if (running && upcoming > 0) {
    try {
      ticks = ticksFrom(parseCron(row.cron, row.timezone), row.next_at, upcoming);
    } catch {
      ticks = [row.next_at];
    }
  }
  let meta: Record<string, unknown> = {};
  try {
    meta = row.meta === null ? {} : JSON.parse(row.meta);
  } catch {
    // Informative only.
  }
  return {
    name: row.name,
    queue: row.queue,
    cron: row.cron,
    timezone: row.timezone ?? "UTC",
    args,
    catchUp: row.catch_up,
    priority: row.priority,
    maxAttempts: row.max_attempts,
    meta,
    paused: row.paused,
    nextTick: running ? row.next_at : null,
    upcoming: ticks,
    lastTick: row.last_at,
    lastTaskId: row.last_task_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Due schedules read per look (the rest wait for the next look, at once). */
const DUE_BATCH = 100;

/** What one look at a queue's schedules did. */
export interface DueOutcome {
  /** The tasks it enqueued. */
  ids: string[];
  /** The time it used (the database's, on PostgreSQL without a clock). */
  now: number;
  /** The earliest next tick of the queue's running schedules; null: none. */
  nextAt: number | null;
  /** More schedules were due than one look reads: look again at once. */
  more: boolean;
}

/**
 * Enqueues the due ticks of `queue`'s schedules: for each due one, its ticks (per its catch-up
 * mode) and its move to the next tick commit in one transaction, if no other worker moved it
 * first. Safe to run from every worker at once. A schedule that fails (a row a newer version
 * wrote) does not stop the others: the first failure is thrown after all were tried.
 */
export async function enqueueDue(
  backend: Backend,
  queue: string,
  now: number | undefined,
): Promise<DueOutcome> {
  const found = await backend.scheduleDue(queue, DUE_BATCH, now);
  const ids: string[] = [];
  let nextAt = found.nextAt;
  let failure: { error: unknown } | undefined;
  for (const row of found.due) {
    try {
      const cron = parseCron(row.cron, row.timezone);
      const { ticks, next } = dueTicks(cron, row.next_at, found.now, row.catch_up);
      const tasks = ticks.map((tick) => tickTask(row, tick, found.now));
      const moved = await backend.scheduleAdvance({
        name: row.name,
        queue: row.queue,
        revision: row.revision,
        from: row.next_at,
        to: next,
        tasks,
      });
      if (moved) { for (const task of tasks) ids.push(task.id); }
      if (next !== NO_MORE_TICKS && (nextAt === null || next < nextAt)) nextAt = next;
    } catch (error) {
      failure ??= { error };
    }
  }
  if (failure) throw failure.error;
  return { ids, now: found.now, nextAt, more: found.due.length === DUE_BATCH };
}

/** The task of one tick: a fixed id per (schedule, tick), due at the tick. */
function tickTask(row: ScheduleRow, tick: number, now: number): NewTaskRow {
  const meta = row.meta === null ? {} : JSON.parse(row.meta) as Record<string, unknown>;
  const cron: CronMeta = { schedule: row.name, tick };
  return {
    id: `cron:${row.name}:${tick}`,
    queue: row.queue,
    args: row.args,
    maxAttempts: row.max_attempts,
    priority: row.priority,
    runAt: tick,
    createdAt: now,
    meta: JSON.stringify({ ...meta, cron }),
    backoff: null,
  };
}

/**
 * Whether `error`, or one of its causes, says that the schedules' table does not exist: a
 * database whose schema predates schedules, read without upgrading it (CLI, board).
 */
export function isMissingSchedulesTable(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (/apalis_schedules/.test(e.message) && /no such table|does not exist/.test(e.message)) {
      return true;
    }
  }
  return false;
}
