/**
 * Unique pushes: the options, their defaults and checks, and the key made from the arguments.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { TASK_STATUSES, type TaskStatus } from "../backend/types.ts";

/**
 * How a push is deduplicated: `storage.push(args, { unique: { … } })` or
 * `Task.builder(args).unique({ … })`. An earlier task of the same queue with the same key
 * **blocks** the push while it is in one of `states` and, with `periodMs`, was pushed less than
 * `periodMs` ago. A blocked push inserts nothing and answers the earlier task's id (`push`
 * resolves to it; `pushDetailed` says `inserted: false`). The check is made by the database, in
 * the push's transaction, so concurrent pushes of one key from any number of processes or hosts
 * insert one task.
 *
 * Defaults, chosen so that the common calls mean what they say:
 * - `{}`: unique while the earlier task has not finished: `pending`, `queued`, `running`, or
 *   `failed` (a failed attempt waiting for its retry).
 * - `{ periodMs }`: at most one task per period, whatever became of it, unless it was `killed`
 *   (every state but `killed`, as Oban: a task that gave up must not keep out a new one).
 * - `states` given: exactly those, within `periodMs` if given too.
 *
 * @example Deduplicate by key for a minute
 * ```ts
 * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
 *
 * const db = openDatabase(":memory:");
 * SqliteStorage.setup(db);
 * const digests = new SqliteStorage<{ customer: number }>(db, "digest");
 * const unique = { key: "digest:42", periodMs: 60_000 };
 * const first = await digests.pushDetailed({ customer: 42 }, { unique });
 * const again = await digests.pushDetailed({ customer: 42 }, { unique });
 * if (!first.inserted || again.inserted || again.id !== first.id) throw new Error("unexpected");
 * db.close();
 * ```
 */
export interface UniqueOptions {
  /**
   * What identifies duplicates within the queue. Absent: the arguments as the codec encodes them
   * (their SHA-256; with JSON, objects with the same keys in the same order). Keys starting with
   * `args:sha256:` are reserved for those.
   */
  key?: string;
  /** How long after the earlier task's push it blocks, in milliseconds (> 0). */
  periodMs?: number;
  /** The states in which the earlier task blocks (see the defaults above). */
  states?: readonly TaskStatus[];
}

/** Unique options checked, with their defaults. */
export interface ResolvedUnique {
  key: string | undefined;
  periodMs: number | null;
  states: readonly TaskStatus[];
}

/** What a push did: the task's id, and whether it was inserted (false: a unique duplicate). */
export interface PushResult {
  /** The new task's id, or the earlier task's when the push was a unique duplicate. */
  id: string;
  /** False when a unique push found an earlier task that blocks it and inserted nothing. */
  inserted: boolean;
}

/**
 * The states in which an earlier task blocks a unique push without `periodMs` or `states`: it
 * has not finished (`failed` is an attempt that failed, waiting for its retry).
 *
 * @example Block while unfinished or done, for a day
 * ```ts
 * import { UNIQUE_STATES_UNFINISHED, type UniqueOptions } from "@apalis/sqlite";
 *
 * const unique: UniqueOptions = {
 *   periodMs: 86_400_000,
 *   states: [...UNIQUE_STATES_UNFINISHED, "done"],
 * };
 * if (unique.states?.length !== 5) throw new Error("unexpected");
 * ```
 */
export const UNIQUE_STATES_UNFINISHED: readonly TaskStatus[] = Object.freeze([
  "pending",
  "queued",
  "running",
  "failed",
]);

/**
 * The states in which an earlier task blocks a unique push with `periodMs` and no `states`:
 * every state but `killed`.
 *
 * @example
 * ```ts
 * import { UNIQUE_STATES_PERIOD } from "@apalis/sqlite";
 *
 * if (UNIQUE_STATES_PERIOD.includes("killed")) throw new Error("unexpected");
 * ```
 */
export const UNIQUE_STATES_PERIOD: readonly TaskStatus[] = Object.freeze([
  "pending",
  "queued",
  "running",
  "failed",
  "done",
]);

/** The prefix of keys made from the arguments. */
export const ARGS_KEY_PREFIX = "args:sha256:";

const OPTION_NAMES = new Set(["key", "periodMs", "states"]);

function invalid(queue: string, field: string, rule: string, value: unknown): never {
  throw new RangeError(
    `Cannot push task to queue '${queue}' as 'unique.${field}' must be ${rule}: current value is ${
      typeof value === "string"
        ? JSON.stringify(value)
        : Array.isArray(value)
        ? JSON.stringify(value)
        : String(value)
    }`,
  );
}

/** Checks unique options, throwing a `TypeError`/`RangeError` that names the field. */
export function resolveUnique(queue: string, options: UniqueOptions): ResolvedUnique {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(
      `Cannot push task to queue '${queue}' as 'unique' must be an object like { key, periodMs, states }`,
    );
  }
  for (const name of Object.keys(options)) {
    if (!OPTION_NAMES.has(name)) {
      throw new TypeError(
        `Cannot push task to queue '${queue}' as 'unique' has an unknown option '${name}' (known: key, periodMs, states)`,
      );
    }
  }
  const { key, periodMs, states } = options;
  if (key !== undefined) {
    if (typeof key !== "string" || key.length === 0 || key.includes("\0")) {
      invalid(queue, "key", "a non-empty string without NUL characters", key);
    }
    if (key.startsWith(ARGS_KEY_PREFIX)) {
      invalid(queue, "key", `a key not starting with '${ARGS_KEY_PREFIX}' (reserved)`, key);
    }
  }
  let period: number | null = null;
  if (periodMs !== undefined) {
    if (typeof periodMs !== "number" || !Number.isFinite(periodMs) || periodMs <= 0) {
      invalid(queue, "periodMs", "a number of milliseconds > 0", periodMs);
    }
    period = Math.max(1, Math.round(periodMs));
  }
  let blocking: readonly TaskStatus[];
  if (states === undefined) {
    blocking = period === null ? UNIQUE_STATES_UNFINISHED : UNIQUE_STATES_PERIOD;
  } else {
    if (!Array.isArray(states) || states.length === 0) {
      invalid(queue, "states", `a non-empty array of ${TASK_STATUSES.join(", ")}`, states);
    }
    for (const state of states) {
      if (!TASK_STATUSES.includes(state)) {
        invalid(queue, "states", `made of ${TASK_STATUSES.join(", ")}`, state);
      }
    }
    blocking = [...new Set(states)];
  }
  return { key, periodMs: period, states: blocking };
}

const utf8 = new TextEncoder();

/** The key of a push without one: the SHA-256 of its encoded arguments (text: its UTF-8). */
export function argsKey(encoded: Uint8Array | string): string {
  const bytes = typeof encoded === "string" ? utf8.encode(encoded) : encoded;
  return ARGS_KEY_PREFIX + createHash("sha256").update(bytes).digest("hex");
}
