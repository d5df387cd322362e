/**
 * Cron expressions, through `croner` (seconds field, time zones, DST): parsing, the next ticks,
 * and which ticks a schedule enqueues when it is found due. No cron arithmetic of our own.
 *
 * @module
 */
import { Cron } from "croner";
import type { CatchUp } from "../backend/types.ts";

/** `catchUp: "all"` enqueues at most this many missed ticks (the most recent ones). */
export const MAX_CATCH_UP = 1000;

/**
 * With `catchUp: "none"`, a tick still runs when a worker enqueues it at most this late (and
 * before the next tick falls due); later than that, it counts as missed.
 */
export const ON_TIME_MS = 60_000;

/** The next tick of a schedule that has no more ticks (a year field in the past). */
export const NO_MORE_TICKS = Number.MAX_SAFE_INTEGER;

const parsed = new Map<string, Cron>();
const PARSED_CAP = 256;

/**
 * The parsed expression in `timezone` (UTC when null), cached; throws croner's error for a bad
 * expression, and a `TypeError` for a date (croner's run-once form), which is no schedule.
 */
export function parseCron(expression: string, timezone: string | null): Cron {
  const key = `${timezone ?? ""}\n${expression}`;
  let cron = parsed.get(key);
  if (cron) return cron;
  // No function: croner keeps no timer for it.
  cron = new Cron(expression, { timezone: timezone ?? "UTC", paused: true });
  if (cron.getOnce() !== null) {
    throw new TypeError("it is a date (a single run), not a repeating cron expression");
  }
  if (parsed.size >= PARSED_CAP) parsed.clear();
  parsed.set(key, cron);
  return cron;
}

/**
 * Throws a `RangeError` unless the runtime knows the time zone `zone`. (Its name is kept as
 * given: the runtime's canonical name may be an older one, `Asia/Calcutta` for `Asia/Kolkata`.)
 */
export function assertZone(zone: string): void {
  new Intl.DateTimeFormat("en-US", { timeZone: zone });
}

/** The first tick strictly after `after`, or null when there is none. */
export function tickAfter(cron: Cron, after: number): number | null {
  return cron.nextRun(new Date(after))?.getTime() ?? null;
}

/** `count` ticks from `from` on (`from` itself when it is a tick). */
export function ticksFrom(cron: Cron, from: number, count: number): number[] {
  return cron.nextRuns(count, new Date(from - 1)).map((date) => date.getTime());
}

/**
 * Which ticks a schedule found due enqueues, oldest first, and its next tick (the first after
 * `now`; {@linkcode NO_MORE_TICKS} when none). `from` is its stored next tick (<= `now`).
 * - `latest`: the most recent due tick.
 * - `none`: `from`, when it is the only due tick and at most {@linkcode ON_TIME_MS} late;
 *   otherwise nothing (missed ticks are skipped).
 * - `all`: every due tick, at most the {@linkcode MAX_CATCH_UP} most recent.
 */
export function dueTicks(
  cron: Cron,
  from: number,
  now: number,
  catchUp: CatchUp,
): { ticks: number[]; next: number } {
  const next = tickAfter(cron, now) ?? NO_MORE_TICKS;
  const latest = Math.max(from, cron.previousRuns(1, new Date(now + 1))[0]?.getTime() ?? from);
  if (catchUp === "latest") return { ticks: [latest], next };
  if (catchUp === "none") {
    return { ticks: latest === from && now - from <= ON_TIME_MS ? [from] : [], next };
  }
  const ticks = [from];
  let tick: number | null = from;
  while (ticks.length <= MAX_CATCH_UP) {
    tick = tickAfter(cron, tick);
    if (tick === null || tick > now) return { ticks, next };
    ticks.push(tick);
  }
  // More than the bound: the most recent ones, read backwards from now.
  const recent = cron.previousRuns(MAX_CATCH_UP, new Date(now + 1)).map((d) => d.getTime());
  return { ticks: recent.filter((t) => t >= from).reverse(), next };
}
