/**
 * Whether a database's schema has a feature that a newer migration added, for writes that a
 * process may skip on a database nobody has upgraded yet (a worker started before `setup()` ran
 * there). Once seen, it is known for good; until then it is looked at again at most once per
 * `recheckMs`, so that an upgrade made meanwhile by another process is noticed.
 *
 * @example Usage
 * ```ts
 * import { SchemaProbe } from "./schema_probe.ts";
 * const probe = new SchemaProbe();
 * const counts = probe.has(() => true); // the check: a version read, say
 * ```
 */
export class SchemaProbe {
  #present = false;
  #checkedAt = -Infinity;

  /** @param recheckMs how long a "not yet" answer holds */
  constructor(readonly recheckMs: number = 60_000) {}

  /** Whether the feature was seen: no check needed (a flush on the hot path reads this first). */
  get present(): boolean {
    return this.#present;
  }

  /** Runs `check` unless its answer is known (true) or recent (false); returns the answer. */
  has(check: () => boolean): boolean {
    if (this.#present) return true;
    const now = performance.now();
    if (now - this.#checkedAt < this.recheckMs) return false;
    this.#checkedAt = now;
    return this.#present = check();
  }

  /**
   * {@linkcode SchemaProbe.has} with a check that reads the database asynchronously; one that
   * throws is not an answer, and runs again at the next call.
   */
  async hasAsync(check: () => Promise<boolean>): Promise<boolean> {
    if (this.#present) return true;
    const now = performance.now();
    if (now - this.#checkedAt < this.recheckMs) return false;
    this.#present = await check(); // a check that throws is tried again next time
    this.#checkedAt = now;
    return this.#present;
  }
}
