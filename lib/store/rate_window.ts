/**
 * The rate limit's memory of recent starts, as SQLite keeps it in `apalis_queues.rate_window`
 * (PostgreSQL's `apalis_claim` does the same in PL/pgSQL). Starts are counted in buckets of
 * `perMs / 200` (at least 1 ms), and a bucket's starts count as if they all happened at the
 * bucket's end: they stop counting `perMs` after that. A claim takes at most `limit` minus the
 * starts still counted. So, by the claim times, no interval of `perMs` ever holds more than
 * `limit` starts (a sliding window, never a fixed one that lets 2 × limit through across a
 * boundary), at the cost of up to one bucket (1/200 of the window) of waiting.
 *
 * Claims arrive in commit order; one whose clock reads earlier than a counted bucket (another
 * process's clock, a moment behind) is counted in that later bucket, which only makes it count
 * for longer.
 *
 * @module
 */

/** `[bucket, starts]` pairs, oldest bucket first. */
export type RateWindow = [bucket: number, starts: number][];

/** Buckets per window. */
export const RATE_BUCKETS = 200;

/** The width of a bucket for a window of `perMs`. */
export function bucketWidth(perMs: number): number {
  return Math.max(1, Math.ceil(perMs / RATE_BUCKETS));
}

/** Reads a stored window; anything unreadable counts as empty. */
export function parseRateWindow(text: string | null): RateWindow {
  if (text === null) return [];
  try {
    const parsed = JSON.parse(text);
    return Array.isArray(parsed) ? parsed as RateWindow : [];
  } catch {
    return [];
  }
}

/** What the rate limit allows a claim at `now`. */
export interface RateAllowance {
  /** The buckets still counted. */
  live: RateWindow;
  /** How many tasks may start now (0 or more). */
  allowed: number;
  /**
   * The time to claim at and stamp the claims with (`lock_at`): `now`, or the newest counted
   * bucket's start when another process counted claims at a later time than this one's clock
   * read (it read it before it waited for the write lock). Stamped so, claim times follow commit
   * order and no interval of `perMs` holds more than `limit` of them.
   */
  at: number;
  /** When nothing may start: in how long the oldest counted bucket stops counting. */
  reopensInMs: number | null;
}

/** The starts `window` still counts at `now`, and how many more `limit` allows. */
export function rateAllowance(
  window: RateWindow,
  limit: number,
  perMs: number,
  now: number,
): RateAllowance {
  const width = bucketWidth(perMs);
  const at = effectiveNow(window, width, now);
  const live = window.filter(([bucket]) => (bucket + 1) * width + perMs > at);
  let counted = 0;
  for (const [, starts] of live) counted += starts;
  const allowed = Math.max(0, limit - counted);
  const oldest = live[0];
  const reopensInMs = allowed > 0 || oldest === undefined
    ? null
    : Math.max(1, (oldest[0] + 1) * width + perMs - at);
  return { live, allowed, reopensInMs, at };
}

/** `live` with `starts` more at `now`. */
export function rateRecord(
  live: RateWindow,
  perMs: number,
  now: number,
  starts: number,
): RateWindow {
  if (starts <= 0) return live;
  const width = bucketWidth(perMs);
  const bucket = Math.floor(effectiveNow(live, width, now) / width);
  const last = live[live.length - 1];
  if (last !== undefined && last[0] === bucket) {
    return [...live.slice(0, -1), [bucket, last[1] + starts]];
  }
  return [...live, [bucket, starts]];
}

/** `now`, or the start of the newest counted bucket when that is later. */
function effectiveNow(window: RateWindow, width: number, now: number): number {
  const newest = window[window.length - 1];
  return newest === undefined ? now : Math.max(now, newest[0] * width);
}
