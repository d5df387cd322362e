/**
 * Measures of what ran when, for the flow-control tests: how many handlers overlapped at most,
 * and how many starts fell at most in one window.
 *
 * @module
 */

/** A handler's run: from `start` to `end` (epoch ms), with a key (its group, or its process). */
export interface Span {
  key: string;
  start: number;
  end: number;
}

/**
 * The most spans running at one moment. A span that ends in the same millisecond as another
 * starts does not overlap it: a task ends (its handler returns) before its ack commits, and a
 * claim that this ack made room for comes after.
 */
export function maxOverlap(spans: readonly Span[]): number {
  const events: [number, number][] = [];
  for (const span of spans) events.push([span.start, 1], [span.end, -1]);
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]); // ends first at a tie
  let now = 0;
  let most = 0;
  for (const [, change] of events) {
    now += change;
    most = Math.max(most, now);
  }
  return most;
}

/** The most of `times` in any half-open window of `windowMs`: (t - windowMs, t]. */
export function maxInAnyWindow(times: readonly number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  let first = 0;
  for (let last = 0; last < sorted.length; last++) {
    while (sorted[first]! <= sorted[last]! - windowMs) first++;
    most = Math.max(most, last - first + 1);
  }
  return most;
}
