/** An exponential backoff: `initialMs × factor^(attempt-1)`, capped at `maxMs`, with jitter. */
export interface BackoffOptions {
  /** Delay before the first retry. @default {1000} */
  initialMs?: number;
  /** Growth per attempt. @default {2} */
  factor?: number;
  /** The longest delay. @default {3600000} */
  maxMs?: number;
  /** Random spread as a fraction of the delay (0 to 1): 0.2 means ±20 %. @default {0.2} */
  jitter?: number;
}

/** A backoff as options, or a function of the attempt that just failed (1-based) and its error. */
export type Backoff = BackoffOptions | ((attempt: number, error: unknown) => number);

/** The default retry backoff: 1 s, doubling, up to 1 h, ±20 %. */
export const DEFAULT_BACKOFF: Required<BackoffOptions> = {
  initialMs: 1000,
  factor: 2,
  maxMs: 3_600_000,
  jitter: 0.2,
};

/** Checks backoff options, throwing a `RangeError` that names the bad field. */
export function validateBackoff(options: BackoffOptions, what: string): Required<BackoffOptions> {
  const merged = { ...DEFAULT_BACKOFF, ...options };
  const checks: [keyof BackoffOptions, boolean][] = [
    ["initialMs", Number.isFinite(merged.initialMs) && merged.initialMs >= 0],
    ["factor", Number.isFinite(merged.factor) && merged.factor >= 1],
    ["maxMs", Number.isFinite(merged.maxMs) && merged.maxMs >= 0],
    ["jitter", Number.isFinite(merged.jitter) && merged.jitter >= 0 && merged.jitter <= 1],
  ];
  for (const [field, ok] of checks) {
    if (!ok) {
      throw new RangeError(
        `Cannot use ${what} as backoff '${field}' is out of range: current value is ${
          merged[field]
        }`,
      );
    }
  }
  return merged;
}

/**
 * The delay before retrying after the `attempt`-th failure.
 *
 * @example Usage
 * ```ts
 * import { backoffDelay } from "./backoff.ts";
 *
 * const ms = backoffDelay({ initialMs: 100, factor: 2, jitter: 0 }, 3, new Error("x"));
 * if (ms !== 400) throw new Error("unexpected");
 * ```
 */
export function backoffDelay(
  backoff: Backoff,
  attempt: number,
  error: unknown,
  random: () => number = Math.random,
): number {
  if (typeof backoff === "function") return Math.max(0, backoff(attempt, error));
  const { initialMs, factor, maxMs, jitter } = { ...DEFAULT_BACKOFF, ...backoff };
  const base = Math.min(maxMs, initialMs * factor ** Math.max(0, attempt - 1));
  const spread = base * jitter * (2 * random() - 1);
  return Math.max(0, Math.round(base + spread));
}
