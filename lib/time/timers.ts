/**
 * Timers of any length. `setTimeout` and `setInterval` hold at most 2^31 - 1 ms (about 24.8
 * days): a longer delay fires at once (Node and Bun also print a `TimeoutOverflowWarning`), so a
 * task due in 30 days would make an idle worker spin. These wait in chunks below that limit.
 *
 * @module
 */

/** The longest delay `setTimeout` and `setInterval` honour, in milliseconds (about 24.8 days). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A pending timer of any length. */
export interface LongTimer {
  /** Cancels it; safe to call more than once. */
  clear(): void;
}

function assertDelay(ms: number): void {
  if (typeof ms !== "number" || Number.isNaN(ms)) {
    throw new RangeError(
      `Cannot start a timer as its delay must be a number: current value is ${ms}`,
    );
  }
}

/**
 * Calls `callback` once after `ms` milliseconds, however long (`Infinity`: never). A delay above
 * `chunkMs` (tests pass a small one) runs as a chain of timers of at most `chunkMs` each.
 *
 * @example Usage
 * ```ts ignore
 * const timer = setLongTimeout(() => console.log("a month later"), 30 * 86_400_000);
 * timer.clear();
 * ```
 */
export function setLongTimeout(
  callback: () => void,
  ms: number,
  chunkMs = MAX_TIMER_MS,
): LongTimer {
  assertDelay(ms);
  let left = Math.max(0, ms);
  let timer: ReturnType<typeof setTimeout>;
  const arm = () => {
    const step = Math.min(left, chunkMs);
    left -= step;
    timer = setTimeout(left > 0 ? arm : callback, step);
  };
  arm();
  return { clear: () => clearTimeout(timer) };
}

/**
 * Calls `callback` every `ms` milliseconds, however long the period (see
 * {@linkcode setLongTimeout}); a period that fits one timer is a plain `setInterval`.
 *
 * @example Usage
 * ```ts ignore
 * const heartbeat = setLongInterval(() => beat(), keepAliveMs);
 * heartbeat.clear();
 * ```
 */
export function setLongInterval(
  callback: () => void,
  ms: number,
  chunkMs = MAX_TIMER_MS,
): LongTimer {
  assertDelay(ms);
  if (ms <= chunkMs) {
    const timer = setInterval(callback, ms);
    return { clear: () => clearInterval(timer) };
  }
  let current: LongTimer | undefined;
  let cleared = false;
  const next = () => {
    current = setLongTimeout(
      () => {
        if (cleared) return;
        next(); // first: the callback may clear the interval
        callback();
      },
      ms,
      chunkMs,
    );
  };
  next();
  return {
    clear: () => {
      cleared = true;
      current?.clear();
    },
  };
}

/**
 * Resolves after `ms` milliseconds, however long, or as soon as `signal` aborts.
 *
 * @example Usage
 * ```ts ignore
 * await sleep(intervalMs, io.signal);
 * ```
 */
export function sleep(ms: number, signal?: AbortSignal, chunkMs = MAX_TIMER_MS): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      timer.clear();
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setLongTimeout(done, ms, chunkMs);
    signal?.addEventListener("abort", done, { once: true });
  });
}
