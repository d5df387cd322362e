/** Where the queue reads the time. Inject one in tests to control scheduling and backoff. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

/** The real clock. */
export const systemClock: Clock = { now: () => Date.now() };
