/** Bad usage or bad input: the message is shown and the CLI exits with code 2. Nothing was written. */
export class UsageError extends Error {
  /** @param message what was wrong, naming the argument or input line */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Exit codes: 0 success, 1 operational failure, 2 bad usage or input. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;
