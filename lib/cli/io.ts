/** Where a CLI command reads and writes: injected so tests can capture everything. */
export interface CliIo {
  /** Writes to standard output. */
  stdout(text: string): void;
  /** Writes to standard error. */
  stderr(text: string): void;
  /** Standard input, as text chunks (for `push --file -` and similar). */
  stdin(): AsyncIterable<string>;
  /** Environment variables (`APALIS_DB`, `NO_COLOR`, …). */
  env: Readonly<Record<string, string | undefined>>;
  /** Whether stdout is a terminal (progress bars, live status lines, colour). */
  isTerminal: boolean;
  /** Aborts on SIGINT/SIGTERM (the `work` command shuts down gracefully on it). */
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
