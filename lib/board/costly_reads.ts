import type { Clock } from "../../mod.ts";

/** Reads that cost less than this are never reused: small queues always show live counts. */
const FREE_MS = 10;
/** A read is reused for this many times what it cost… */
const REUSE_FACTOR = 20;
/** …but never for longer than this. */
const MAX_REUSE_MS = 60_000;

/** A value and when it was read. */
export interface Read<T> {
  value: T;
  /** Epoch ms at the start of the read. */
  at: number;
  /** Whether this is a kept value rather than a read made for this call. */
  reused: boolean;
}

/**
 * Keeps the result of an expensive read for a while, in proportion to what it cost. Counting
 * the tasks of a queue reads every entry of its indexes (about 0.1 s per million tasks, during
 * which a synchronous driver holds the event loop), and each open board page asks again every
 * 2 s. A read that took `c` ms is reused for `20·c` ms (at most 60 s), which keeps counting
 * under about 5 % of the board process's time however big the queues grow; a read under 10 ms
 * is never reused. {@linkcode CostlyReads.clear} forgets everything (after a write).
 *
 * @example Usage
 * ```ts
 * import { CostlyReads } from "./costly_reads.ts";
 *
 * const reads = new CostlyReads({ now: () => Date.now() });
 * const { value } = await reads.get("answer", () => Promise.resolve(42));
 * if (value !== 42) throw new Error("unexpected");
 * ```
 */
export class CostlyReads {
  readonly #clock: Clock;
  readonly #kept = new Map<string, { value: unknown; at: number; until: number }>();

  /** @param clock where time, and so each read's cost, comes from */
  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** The value of `key`: reused while young enough for what it cost, else read again. */
  async get<T>(key: string, read: () => Promise<T>): Promise<Read<T>> {
    const at = this.#clock.now();
    const kept = this.#kept.get(key);
    if (kept && at < kept.until) return { value: kept.value as T, at: kept.at, reused: true };
    const value = await read();
    const cost = this.#clock.now() - at;
    if (cost < FREE_MS) {
      this.#kept.delete(key);
    } else {
      this.#kept.set(key, { value, at, until: at + Math.min(MAX_REUSE_MS, cost * REUSE_FACTOR) });
    }
    return { value, at, reused: false };
  }

  /** Forgets every kept read. */
  clear(): void {
    this.#kept.clear();
  }
}
