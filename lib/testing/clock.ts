import type { Clock } from "../storage/clock.ts";
import { parseDurationText } from "../format/duration.ts";

/**
 * A clock a test moves by hand: give it to a storage (`{ clock }`) and scheduled tasks, retry
 * backoff and cron ticks fall due when the test says, not when the wall clock does.
 *
 * @example Run a task scheduled an hour ahead without waiting an hour
 * ```ts
 * import { drainQueue, tempDatabase, TestClock } from "@apalis/sqlite/testing";
 *
 * const clock = new TestClock();
 * await using db = await tempDatabase();
 * const reminders = db.storage<{ user: number }>("reminders", { clock });
 * await reminders.push({ user: 7 }, { runAfter: 3_600_000 });
 * if ((await drainQueue(reminders, () => {})).ran !== 0) throw new Error("not due yet");
 * clock.advance("1h");
 * if ((await drainQueue(reminders, () => {})).done !== 1) throw new Error("due now");
 * ```
 */
export class TestClock implements Clock {
  #now: number;

  /** @param start the time it shows first, epoch ms or a Date @default {Date.now()} */
  constructor(start: number | Date = Date.now()) {
    this.#now = toEpochMs(start, "start");
  }

  /** The time it shows, epoch ms. */
  now(): number {
    return this.#now;
  }

  /**
   * Moves it forward by `by`: milliseconds or a duration (`"500ms"`, `"30s"`, `"5m"`, `"2h"`,
   * `"7d"`). Returns the new time.
   */
  advance(by: number | string): number {
    const ms = typeof by === "string" ? parseDurationText(by) : by;
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) {
      throw new RangeError(
        `Cannot advance the clock by ${
          JSON.stringify(by)
        }: give milliseconds >= 0 or a duration such as "30s", "5m", "2h"`,
      );
    }
    return this.#now += ms;
  }

  /** Sets it to `to` (epoch ms or a Date; it may go back). */
  set(to: number | Date): void {
    this.#now = toEpochMs(to, "to");
  }
}

function toEpochMs(value: number | Date, name: string): number {
  const ms = value instanceof Date ? value.getTime() : value;
  if (typeof ms !== "number" || !Number.isFinite(ms)) {
    throw new RangeError(
      `Cannot set the clock: '${name}' must be epoch milliseconds or a valid Date, got ${
        String(value)
      }`,
    );
  }
  return ms;
}
