/**
 * How long a queue keeps its finished tasks: the settings of `Config.setRetention`, read and
 * checked. The running workers of the queue apply them (see `lib/worker/retention_sweeper.ts`).
 *
 * @module
 */
import { parseDurationText } from "../format/duration.ts";

/**
 * How long to keep tasks of a status after they finished: milliseconds (an integer >= 0), a
 * duration like `"12h"`, `"7d"` or `"2w"` (units ms, s, m, h, d, w), or `"forever"` (also
 * `null` or `Infinity`): never deleted by retention.
 *
 * @example Usage
 * ```ts
 * import type { RetentionAge } from "@apalis/sqlite";
 *
 * const ages: RetentionAge[] = ["7d", 3_600_000, "forever"];
 * if (ages.length !== 3) throw new Error("unexpected");
 * ```
 */
export type RetentionAge = number | string | null;

/**
 * What `Config.setRetention` takes; a field that is absent stays as it was.
 *
 * @example Usage
 * ```ts
 * import { Config, type RetentionOptions } from "@apalis/sqlite";
 *
 * const options: RetentionOptions = { done: "3d", killed: "forever", every: "5m" };
 * const config = new Config("reports").setRetention(options);
 * if (config.retention.everyMs !== 300_000) throw new Error("unexpected");
 * ```
 */
export interface RetentionOptions {
  /** How long `done` tasks are kept after they finished. @default {"7d"} */
  done?: RetentionAge;
  /** How long `killed` tasks are kept after they were killed. @default {"30d"} */
  killed?: RetentionAge;
  /** How often the queue's workers look for expired tasks (at least 1 ms). @default {"1m"} */
  every?: number | string;
  /** The most tasks deleted per transaction (1 to 10,000). @default {1000} */
  batchSize?: number;
}

/**
 * A queue's retention, resolved: ages in milliseconds, `null` for forever.
 *
 * @example Usage
 * ```ts
 * import { Config, type Retention } from "@apalis/sqlite";
 *
 * const retention: Retention = new Config("emails").retention;
 * if (retention.doneMs !== 7 * 86_400_000) throw new Error("unexpected");
 * ```
 */
export interface Retention {
  /** How long `done` tasks are kept, in ms; `null`: forever. */
  readonly doneMs: number | null;
  /** How long `killed` tasks are kept, in ms; `null`: forever. */
  readonly killedMs: number | null;
  /** How often the queue's workers look for expired tasks, in ms. */
  readonly everyMs: number;
  /** The most tasks deleted per transaction. */
  readonly batchSize: number;
}

const DAY_MS = 86_400_000;
/** The most tasks a retention transaction may delete: about 50 ms of write lock on SQLite. */
export const MAX_RETENTION_BATCH = 10_000;

/**
 * The default: `done` tasks 7 days, `killed` tasks 30 days (they are the ones an operator reads
 * and retries by hand, and there are few of them), a look every minute, 1,000 per transaction.
 */
export const DEFAULT_RETENTION: Retention = Object.freeze({
  doneMs: 7 * DAY_MS,
  killedMs: 30 * DAY_MS,
  everyMs: 60_000,
  batchSize: 1000,
});

/** `current` changed by `options`, checked; throws a `RangeError` naming the bad field. */
export function resolveRetention(current: Retention, options: RetentionOptions): Retention {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot set retention as its options must be an object like { done: "7d", killed: "30d" }: current value is ${
        String(options)
      }`,
    );
  }
  const resolved = { ...current };
  if (options.done !== undefined) resolved.doneMs = retentionAge("done", options.done);
  if (options.killed !== undefined) resolved.killedMs = retentionAge("killed", options.killed);
  if (options.every !== undefined) {
    const every = options.every === null ? undefined : durationOf(options.every);
    if (every === undefined || every < 1) {
      throw new RangeError(
        `Cannot set retention as 'every' must be a duration like "30s" or "1m", or milliseconds >= 1: current value is ${
          describe(options.every)
        }`,
      );
    }
    resolved.everyMs = every;
  }
  if (options.batchSize !== undefined) {
    const size = options.batchSize;
    if (!Number.isSafeInteger(size) || size < 1 || size > MAX_RETENTION_BATCH) {
      throw new RangeError(
        `Cannot set retention as 'batchSize' must be an integer from 1 to ${MAX_RETENTION_BATCH}: current value is ${
          describe(size)
        }`,
      );
    }
    resolved.batchSize = size;
  }
  return Object.freeze(resolved);
}

function retentionAge(field: string, age: RetentionAge): number | null {
  if (age === null || age === Infinity || age === "forever") return null;
  const ms = durationOf(age);
  if (ms === undefined) {
    throw new RangeError(
      `Cannot set retention as '${field}' must be a duration like "12h", "7d" or "2w", milliseconds >= 0, or "forever": current value is ${
        describe(age)
      }`,
    );
  }
  return ms;
}

/** Milliseconds of a duration given as a number or as text; `undefined` for neither. */
function durationOf(value: unknown): number | undefined {
  if (typeof value === "number") {
    return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  }
  if (typeof value !== "string") return undefined;
  const ms = parseDurationText(value);
  return typeof ms === "number" && Number.isSafeInteger(ms) ? ms : undefined;
}

function describe(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}
