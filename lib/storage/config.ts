import { DEFAULT_POLL_STRATEGY, IntervalStrategy, type PollStrategy } from "./poll_strategy.ts";
import {
  DEFAULT_RETENTION,
  resolveRetention,
  type Retention,
  type RetentionOptions,
} from "./retention.ts";

/**
 * A queue's fetch settings. Setters return a new `Config`, so a shared config is never changed
 * under a worker's feet.
 *
 * @example Usage
 * ```ts
 * import { Config } from "@apalis/sqlite";
 *
 * const config = new Config("emails").setBufferSize(20).setKeepAlive(10_000);
 * if (config.bufferSize !== 20) throw new Error("unexpected");
 * ```
 */
export class Config {
  /** The queue name. */
  readonly queue: string;
  /**
   * The most tasks a worker claims ahead of its free slots, to start them as slots free up
   * without another write. It claims ahead only what it finishes in about 10 ms at its recent
   * pace (none for slow tasks), never a task's last attempt, and counts their attempt at the
   * claim (given back on a graceful stop). A `kill -9` re-runs at most `concurrency` +
   * `bufferSize` tasks of the worker. The cap matters for quick tasks only: a transaction then
   * records and claims up to this many, and 400 rather than 100 drained no-op tasks 15-20 %
   * faster (fewer commits, fewer checkpoints). @default {400}
   */
  readonly bufferSize: number = 400;
  /** Heartbeat period of workers, in milliseconds. @default {30000} */
  readonly keepAliveMs: number = 30_000;
  /** A worker silent for this long is dead and its tasks are re-enqueued. @default {300000} */
  readonly reenqueueOrphanedAfterMs: number = 300_000;
  /** When an idle worker polls again. @default {BackoffStrategy 100 ms → 60 s} */
  readonly pollStrategy: PollStrategy = DEFAULT_POLL_STRATEGY;
  /**
   * How long finished tasks are kept before the queue's running workers delete them (see
   * {@linkcode Config.setRetention}). @default {done 7 days, killed 30 days, a look every minute}
   */
  readonly retention: Retention = DEFAULT_RETENTION;

  /**
   * What is wrong with a queue name, as the end of a sentence (`"must be a non-empty string: …"`),
   * or `undefined` for a good one: the rule every queue name follows.
   *
   * @example Usage
   * ```ts
   * import { Config } from "@apalis/sqlite";
   *
   * if (Config.queueNameProblem("email") !== undefined) throw new Error("unexpected");
   * if (Config.queueNameProblem("") === undefined) throw new Error("unexpected");
   * ```
   */
  static queueNameProblem(queue: unknown): string | undefined {
    return queueNameProblem(queue);
  }

  /** @param queue the queue name: a non-empty string without NUL characters */
  constructor(queue = "default") {
    const problem = queueNameProblem(queue);
    if (problem !== undefined) {
      throw new TypeError(`Cannot create Config as 'queue' ${problem}`);
    }
    this.queue = queue;
  }

  /** Sets the poll strategy (or a fixed interval in milliseconds). */
  withPollInterval(strategy: PollStrategy | number): Config {
    return this.#with({
      pollStrategy: typeof strategy === "number" ? new IntervalStrategy(strategy) : strategy,
    });
  }

  /** Sets the most tasks a worker claims ahead of its free slots (see `bufferSize`). */
  setBufferSize(size: number): Config {
    positive("bufferSize", size);
    return this.#with({ bufferSize: size });
  }

  /**
   * Sets the heartbeat period in milliseconds (an integer >= 1, of any length). Keep it well
   * below `reenqueueOrphanedAfterMs`, or other workers take this one for dead.
   */
  setKeepAlive(ms: number): Config {
    positive("keepAliveMs", ms);
    return this.#with({ keepAliveMs: ms });
  }

  /** Sets how long a silent worker is trusted before its tasks are re-enqueued. */
  setReenqueueOrphanedAfter(ms: number): Config {
    positive("reenqueueOrphanedAfterMs", ms);
    return this.#with({ reenqueueOrphanedAfterMs: ms });
  }

  /**
   * Sets how long finished tasks are kept: `done` ones 7 days and `killed` ones 30 days unless
   * told otherwise (killed tasks are the ones an operator reads and retries by hand, and there
   * are few). A field that is absent keeps its value. An age is milliseconds, a duration like
   * `"12h"`, `"7d"` or `"2w"`, or `"forever"` (also `null`, `Infinity`).
   *
   * The running workers of the queue delete expired tasks: one worker at a time across processes
   * and hosts (it holds the queue's lease in the database while it deletes), after it starts and
   * then `every` minute, at most `batchSize` (1,000) tasks per transaction with pauses between
   * them. A task of a workflow run goes only with its whole run: once the run has finished and
   * every one of its tasks has expired. A worker of a queue with several workers applies the
   * settings of whichever worker holds the lease, so give them all the same. Each batch that
   * deletes emits a `retention` worker event. `Admin.vacuum` still deletes by hand.
   *
   * @example Keep done tasks a day, killed ones forever
   * ```ts
   * import { Config } from "@apalis/sqlite";
   *
   * const config = new Config("emails").setRetention({ done: "1d", killed: "forever" });
   * if (config.retention.doneMs !== 86_400_000 || config.retention.killedMs !== null) {
   *   throw new Error("unexpected");
   * }
   * ```
   */
  setRetention(options: RetentionOptions): Config {
    return this.#with({ retention: resolveRetention(this.retention, options) });
  }

  /** Returns the same settings for another queue. */
  withQueue(queue: string): Config {
    const copy = new Config(queue);
    return Object.assign(copy, { ...this, queue });
  }

  #with(changes: Partial<Config>): Config {
    return Object.assign(new Config(this.queue), { ...this, ...changes });
  }
}

/**
 * What is wrong with a queue name, as the end of a sentence ("must be …"), or `undefined` for a
 * good one: a non-empty string without NUL characters (some drivers end SQLite text at a NUL, so
 * "a\0b" could be read back as "a").
 */
export function queueNameProblem(queue: unknown): string | undefined {
  if (typeof queue !== "string" || queue.length === 0) {
    return `must be a non-empty string: current value is ${JSON.stringify(queue) ?? String(queue)}`;
  }
  if (queue.includes("\0")) {
    return `must not contain a NUL character: current value is ${JSON.stringify(queue)}`;
  }
  return undefined;
}

function positive(field: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot configure queue as '${field}' must be an integer >= 1: current value is ${value}`,
    );
  }
}
