/** Where a CLI command reads and writes: injected so tests can capture everything. */
export interface CliIo {
  /** Writes to standard output (queued: see `flush`). */
  stdout(text: string): void;
  /** Writes to standard error (queued: see `flush`). */
  stderr(text: string): void;
  /**
   * Resolves once everything written so far has been handed to the system, or its reader has
   * gone away. Commands that write repeatedly (`stats --watch`) await it, so a slow reader slows
   * them down instead of filling memory.
   */
  flush(): Promise<void>;
  /** Standard input, as text chunks (for `push --file -` and similar). */
  stdin(): AsyncIterable<string>;
  /** Environment variables (`APALIS_DB`, `NO_COLOR`, …). */
  env: Readonly<Record<string, string | undefined>>;
  /** Whether stdout is a terminal (progress bars, live status lines, colour). */
  isTerminal: boolean;
  /**
   * Aborts on SIGINT/SIGTERM (the `work` command shuts down gracefully on it), and when the
   * reader of stdout goes away (`apalis stats --watch | head -1`).
   */
  signal: AbortSignal;
}

/** A captured run of the CLI, for tests. */
export interface CapturedIo extends CliIo {
  /** Everything written to stdout. */
  readonly out: string;
  /** Everything written to stderr. */
  readonly err: string;
  /** Aborts `signal`, as a SIGINT would. */
  interrupt(): void;
}

/**
 * An in-memory {@linkcode CliIo}: captures output, feeds `stdin` from a string.
 *
 * @example Usage
 * ```ts ignore
 * const io = captureIo({ env: { APALIS_DB: path } });
 * const code = await main(["stats", "--json"], io);
 * ```
 */
export function captureIo(
  options: { stdin?: string; env?: Record<string, string | undefined>; isTerminal?: boolean } = {},
): CapturedIo {
  let out = "";
  let err = "";
  const controller = new AbortController();
  return {
    stdout: (text) => void (out += text),
    stderr: (text) => void (err += text),
    flush: () => Promise.resolve(),
    async *stdin() {
      if (options.stdin !== undefined) yield options.stdin;
    },
    env: options.env ?? {},
    isTerminal: options.isTerminal ?? false,
    signal: controller.signal,
    get out() {
      return out;
    },
    get err() {
      return err;
    },
    interrupt: () => controller.abort(),
  };
}
