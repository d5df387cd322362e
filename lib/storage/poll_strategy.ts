import { sleep as longSleep } from "../time/timers.ts";

/** One fetcher's view of a strategy: waits for the next moment to poll. */
export interface PollTicker {
  /**
   * Resolves when the fetcher should poll again. `foundWork` tells whether the last poll
   * claimed anything. Rejects (or resolves) early when `signal` aborts.
   */
  wait(foundWork: boolean, signal: AbortSignal): Promise<void>;
}

/** Waits `ms` milliseconds, or less when `signal` aborts. Injectable for tests. */
export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

/** Decides when an idle fetcher polls the database again. */
export interface PollStrategy {
  /** Returns a fresh ticker with its own state, for one fetcher (`sleep` is for tests). */
  ticker(sleep?: Sleep): PollTicker;
}

/** The real timer-based {@linkcode Sleep}: any duration, 30 days too (see `lib/time/timers.ts`). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return longSleep(ms, signal);
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

  ticker(wait: Sleep = sleep): PollTicker {
    return { wait: (_found, signal) => wait(this.intervalMs, signal) };
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

  ticker(wait: Sleep = sleep): PollTicker {
    const { initialMs, multiplier, maxMs, jitter } = this.options;
    let current: number | undefined;
    return {
      wait: (foundWork, signal) => {
        // The first wait, and any wait after a poll that found work, starts from initialMs.
        current = foundWork || current === undefined
          ? initialMs
          : Math.min(maxMs, current * multiplier);
        const spread = current * jitter * (2 * Math.random() - 1);
        return wait(Math.max(0, current + spread), signal);
      },
    };
  }
}

/** The default: 100 ms, doubling while idle up to 60 s, reset when work is found. */
export const DEFAULT_POLL_STRATEGY: PollStrategy = new BackoffStrategy();

/**
 * Polls whenever a source of yours ticks: each item of an async iterable (a channel, a stream of
 * events), or each resolution of a promise-returning function.
 *
 * Workers sharing one `StreamStrategy` (through one `Config`) share one iterator of an async
 * iterable: each item wakes every worker waiting at that moment. A function source is called by
 * each waiting worker.
 *
 * @example Poll when your own event source says so
 * ```ts
 * import { Config, StreamStrategy } from "@apalis/sqlite";
 *
 * async function* everySecond() {
 *   while (true) {
 *     await new Promise((resolve) => setTimeout(resolve, 1000));
 *     yield;
 *   }
 * }
 * const config = new Config("emails").withPollInterval(new StreamStrategy(everySecond()));
 * ```
 */
export class StreamStrategy implements PollStrategy {
  #source: AsyncIterable<unknown> | (() => Promise<unknown>);
  #iterator: AsyncIterator<unknown> | undefined;
  #pending: Promise<IteratorResult<unknown>> | undefined;

  /** @param source an async iterable (one tick per item) or a function returning a promise */
  constructor(source: AsyncIterable<unknown> | (() => Promise<unknown>)) {
    if (typeof source !== "function" && !(source && Symbol.asyncIterator in source)) {
      throw new TypeError(
        "Cannot create StreamStrategy: 'source' must be an async iterable or a function returning a promise",
      );
    }
    this.#source = source;
  }

  ticker(): PollTicker {
    return {
      wait: (_found, signal) => {
        const tick = typeof this.#source === "function" ? this.#source() : this.#next();
        return raceAbort(tick.then(() => {}), signal);
      },
    };
  }

  /** The next item; a wait that lost a race keeps its pending `next()` for the next wait. */
  #next(): Promise<unknown> {
    this.#iterator ??= (this.#source as AsyncIterable<unknown>)[Symbol.asyncIterator]();
    const pending = this.#pending ??= this.#iterator.next();
    return pending.then((result) => {
      if (this.#pending === pending) this.#pending = undefined;
      // An exhausted source never ticks again; the other strategies (if any) keep polling.
      return result.done ? new Promise(() => {}) : result;
    });
  }
}

function raceAbort(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      signal.removeEventListener("abort", done);
      resolve();
    };
    signal.addEventListener("abort", done, { once: true });
    promise.then(done, done);
  });
}

/**
 * Several strategies raced: the first to tick wins, and one poll happens (not one per
 * strategy). Build one with {@linkcode StrategyBuilder}.
 */
export class MultiStrategy implements PollStrategy {
  /** The strategies, in the order they were applied. */
  readonly strategies: readonly PollStrategy[];

  /** @param strategies at least one */
  constructor(strategies: readonly PollStrategy[]) {
    if (strategies.length === 0) {
      throw new TypeError("Cannot build a poll strategy: apply at least one strategy");
    }
    this.strategies = [...strategies];
  }

  ticker(wait: Sleep = sleep): PollTicker {
    const tickers = this.strategies.map((strategy) => strategy.ticker(wait));
    return {
      wait: async (foundWork, signal) => {
        const race = new AbortController();
        const stop = () => race.abort();
        signal.addEventListener("abort", stop, { once: true });
        try {
          await Promise.race(tickers.map((ticker) => ticker.wait(foundWork, race.signal)));
        } finally {
          race.abort(); // the losers stop waiting: one tick, one poll
          signal.removeEventListener("abort", stop);
        }
      },
    };
  }
}

/**
 * Combines poll strategies; they race, and the first tick wins.
 *
 * @example A fixed 5 s poll raced with a backoff
 * ```ts
 * import { BackoffStrategy, Config, IntervalStrategy, StrategyBuilder } from "@apalis/sqlite";
 *
 * const strategy = new StrategyBuilder()
 *   .apply(new IntervalStrategy(5000))
 *   .apply(new BackoffStrategy({ initialMs: 100, maxMs: 10_000 }))
 *   .build();
 * const config = new Config("emails").withPollInterval(strategy);
 * ```
 */
export class StrategyBuilder {
  #strategies: PollStrategy[] = [];

  /** Adds a strategy to the race. */
  apply(strategy: PollStrategy): this {
    if (!strategy || typeof strategy.ticker !== "function") {
      throw new TypeError("Cannot apply a poll strategy: it has no ticker() method");
    }
    this.#strategies.push(strategy);
    return this;
  }

  /** The combined strategy (throws when none was applied). */
  build(): MultiStrategy {
    return new MultiStrategy(this.#strategies);
  }
}
