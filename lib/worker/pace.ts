/**
 * How fast a worker finishes tasks, and so how many it may claim ahead of its free slots: what
 * it finishes in `windowMs` at its recent pace, at most a cap. Quick tasks then commit in large
 * batches, while slow ones are not hoarded from other workers.
 *
 * @example Usage
 * ```ts ignore
 * const pace = new Pace(10, 10, 0);
 * for (let i = 0; i < 400; i++) pace.settled();
 * pace.aheadWanted(100, 0, 20); // 100: 20 tasks/ms over the last 20 ms, capped
 * ```
 */
export class Pace {
  /** Tasks finished per millisecond, smoothed over samples of at least `sampleMs`. */
  #perMs = 0;
  #since: number;
  #settled = 0;
  readonly #windowMs: number;
  readonly #sampleMs: number;

  /**
   * @param windowMs claim ahead what is finished in this long
   * @param sampleMs measure the pace over at least this long
   * @param now the clock's reading (`performance.now()`)
   */
  constructor(windowMs: number, sampleMs: number, now: number = performance.now()) {
    this.#windowMs = windowMs;
    this.#sampleMs = sampleMs;
    this.#since = now;
  }

  /** Counts a finished task. */
  settled(): void {
    this.#settled++;
  }

  /**
   * How many tasks to claim ahead now, given `held` already claimed ahead: enough to hold what
   * is finished in the window, at most `cap`, topped up only once half of that has started (so
   * claims stay large).
   */
  aheadWanted(cap: number, held: number, now: number = performance.now()): number {
    const elapsed = now - this.#since;
    if (elapsed >= this.#sampleMs) {
      this.#perMs = (this.#perMs + this.#settled / elapsed) / 2;
      this.#since = now;
      this.#settled = 0;
    }
    const target = Math.min(cap, Math.floor(this.#perMs * this.#windowMs));
    const missing = target - held;
    return missing > 0 && missing >= target / 2 ? missing : 0;
  }
}
