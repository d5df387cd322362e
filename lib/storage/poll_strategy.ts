/** One fetcher's view of a strategy: waits for the next moment to poll. */
export interface PollTicker {
  /**
   * Resolves when the fetcher should poll again. `foundWork` tells whether the last poll
   * claimed anything. Rejects (or resolves) early when `signal` aborts.
   */
  wait(foundWork: boolean, signal: AbortSignal): Promise<void>;
}

/** Decides when an idle fetcher polls the database again. */
export interface PollStrategy {
  /** Returns a fresh ticker with its own state, for one fetcher. */
  ticker(): PollTicker;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * Polls at a fixed interval.
 *
 * @example Usage
 * ```ts
 * import { Config, IntervalStrategy } from "@apalis/sqlite";
 *
 * const config = new Config("emails").withPollInterval(new IntervalStrategy(5000));
 * ```
 */
export class IntervalStrategy implements PollStrategy {
  /** The interval in milliseconds. */
  readonly intervalMs: number;

  /** @param intervalMs milliseconds between polls */
  constructor(intervalMs: number) {
    if (!Number.isFinite(intervalMs) || intervalMs < 0) {
      throw new RangeError(
        `Cannot create IntervalStrategy as 'intervalMs' must be >= 0: current value is ${intervalMs}`,
      );
    }
    this.intervalMs = intervalMs;
  }

  ticker(): PollTicker {
    return { wait: (_found, signal) => sleep(this.intervalMs, signal) };
  }
}

/** Options for {@linkcode BackoffStrategy}. */
export interface BackoffStrategyOptions {
  /** The first (and reset) interval. @default {100} */
  initialMs?: number;
  /** Growth after each empty poll. @default {2} */
  multiplier?: number;
  /** The longest interval. @default {60000} */
  maxMs?: number;
  /** Random spread as a fraction of the interval (0 to 1). @default {0.1} */
  jitter?: number;
}

/**
 * Polls at an interval that grows while polls find nothing and resets as soon as one finds work.
 *
 * @example Usage
 * ```ts
 * import { BackoffStrategy, Config } from "@apalis/sqlite";
 *
 * const config = new Config("emails")
 *   .withPollInterval(new BackoffStrategy({ initialMs: 50, maxMs: 5000 }));
 * ```
 */
export class BackoffStrategy implements PollStrategy {
  /** The resolved options. */
  readonly options: Required<BackoffStrategyOptions>;

  /** @param options interval, growth, cap and jitter */
  constructor(options: BackoffStrategyOptions = {}) {
    this.options = { initialMs: 100, multiplier: 2, maxMs: 60_000, jitter: 0.1, ...options };
    const { initialMs, multiplier, maxMs, jitter } = this.options;
    if (!(initialMs >= 0 && multiplier >= 1 && maxMs >= initialMs && jitter >= 0 && jitter <= 1)) {
      throw new RangeError(
        `Cannot create BackoffStrategy as its options are out of range: current value is ${
          JSON.stringify(this.options)
        }`,
      );
    }
  }

  ticker(): PollTicker {
    const { initialMs, multiplier, maxMs, jitter } = this.options;
    let current = initialMs;
    return {
      wait: (foundWork, signal) => {
        current = foundWork ? initialMs : Math.min(maxMs, current * multiplier);
        const spread = current * jitter * (2 * Math.random() - 1);
        return sleep(Math.max(0, current + spread), signal);
      },
    };
  }
}

/** The default: 100 ms, doubling while idle up to 60 s, reset when work is found. */
export const DEFAULT_POLL_STRATEGY: PollStrategy = new BackoffStrategy();
