/**
 * Flow control of a queue, as users give and read it: limits checked before anything is
 * written, and the stored settings turned into {@linkcode QueueLimits}.
 *
 * @module
 */
import type { QueueLimits, QueueLimitsChange, QueueSettingsRow } from "../backend/types.ts";
import { describeValue } from "./error_text.ts";

export type { QueueLimits, QueueLimitsChange } from "../backend/types.ts";

/** A queue's flow control: whether it is paused, and its limits. */
export interface QueueFlow {
  /** No worker starts a task of the queue while it is paused (pushes still succeed). */
  paused: boolean;
  /** Its limits (`{}`: none). */
  limits: QueueLimits;
}

const LIMIT_KEYS = ["rate", "concurrency", "groupConcurrency"] as const;

/** The largest count or duration a limit takes (the columns hold more; this is plenty). */
const MAX_LIMIT = 2 ** 31 - 1;

/**
 * Checks a change of limits: each field absent (unchanged), `null` (removed) or valid. Throws a
 * `TypeError` or `RangeError` that names the field and the value.
 */
export function validateLimitsChange(queue: string, change: unknown): QueueLimitsChange {
  const fail = (message: string): never => {
    throw new TypeError(`Cannot set the limits of queue '${queue}': ${message}`);
  };
  if (typeof change !== "object" || change === null || Array.isArray(change)) {
    fail(
      `the limits must be an object, such as { concurrency: 5 }: current value is ${
        describeValue(change)
      }`,
    );
  }
  const given = change as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!(LIMIT_KEYS as readonly string[]).includes(key)) {
      fail(`'${key}' is not a limit (the limits are ${LIMIT_KEYS.join(", ")})`);
    }
  }
  const result: QueueLimitsChange = {};
  const { rate, concurrency, groupConcurrency } = given;
  if (rate === null) result.rate = null;
  else if (rate !== undefined) {
    if (typeof rate !== "object" || Array.isArray(rate)) {
      fail(`'rate' must be { limit, perMs } or null: current value is ${describeValue(rate)}`);
    }
    const { limit, perMs, ...rest } = rate as Record<string, unknown>;
    const extra = Object.keys(rest)[0];
    if (extra !== undefined) fail(`'rate.${extra}' is not a field of a rate (limit, perMs)`);
    result.rate = {
      limit: count(queue, "rate.limit", limit, "starts"),
      perMs: count(queue, "rate.perMs", perMs, "milliseconds"),
    };
  }
  if (concurrency !== undefined) {
    result.concurrency = concurrency === null
      ? null
      : count(queue, "concurrency", concurrency, "tasks");
  }
  if (groupConcurrency !== undefined) {
    result.groupConcurrency = groupConcurrency === null
      ? null
      : count(queue, "groupConcurrency", groupConcurrency, "tasks");
  }
  return result;
}

/** An integer from 1 to {@linkcode MAX_LIMIT}, or a `RangeError` naming `field`. */
function count(queue: string, field: string, value: unknown, unit: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_LIMIT) {
    throw new RangeError(
      `Cannot set the limits of queue '${queue}' as '${field}' must be a whole number of ${unit} from 1 to ${MAX_LIMIT}: current value is ${
        describeValue(value)
      }`,
    );
  }
  return value;
}

/** The limits a settings row holds (`{}` for none). */
export function limitsOf(row: QueueSettingsRow | undefined): QueueLimits {
  const limits: QueueLimits = {};
  if (row === undefined) return limits;
  if (row.rate_limit !== null && row.rate_per_ms !== null) {
    limits.rate = { limit: Number(row.rate_limit), perMs: Number(row.rate_per_ms) };
  }
  if (row.concurrency !== null) limits.concurrency = Number(row.concurrency);
  if (row.group_concurrency !== null) limits.groupConcurrency = Number(row.group_concurrency);
  return limits;
}

/** A queue's flow control from its settings row (none: neither paused nor limited). */
export function flowOf(row: QueueSettingsRow | undefined): QueueFlow {
  return { paused: row?.paused === true, limits: limitsOf(row) };
}

/** What is wrong with a task's group key, if anything: it must be a non-empty string without NUL. */
export function groupKeyProblem(group: unknown): string | undefined {
  if (typeof group !== "string" || group.length === 0) {
    return `a non-empty string`;
  }
  if (group.includes("\0")) return "a string without NUL characters";
  return undefined;
}
