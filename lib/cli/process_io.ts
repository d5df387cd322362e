import process from "node:process";
import type { Writable } from "node:stream";
import type { CliIo } from "./io.ts";

/**
 * The exit code when the reader of standard output went away (`apalis ls | head -1`): what a
 * shell shows for a process ended by SIGPIPE (128 + 13), as `yes | head -1` gives.
 */
export const EXIT_BROKEN_PIPE = 141;

/** The real process's {@linkcode CliIo}, with what `cli.ts` needs to exit cleanly. */
export interface ProcessIo extends CliIo {
  /**
   * Waits until all output is written (or its reader is gone) and returns the code to exit
   * with: `code`; {@linkcode EXIT_BROKEN_PIPE} when the reader of stdout went away; 1 (after
   * saying why on stderr) when stdout could not be written otherwise (a full disk).
   */
  finish(code: number): Promise<number>;
}

/**
 * The real process's {@linkcode CliIo}, on Deno and Bun alike. Writes are queued and `flush()`
 * waits for them: on Bun, stdout is written asynchronously and `process.exit()` would cut off
 * what a slow pipe has not taken yet. When the reader of stdout goes away, further output is
 * dropped and `signal` aborts, so loops (`stats --watch`) end; nothing is thrown.
 *
 * `signal` installs SIGINT and SIGTERM listeners only when a command asks for it (so Ctrl-C
 * still ends other commands at once); a second signal exits at once with code 130.
 *
 * @example Usage
 * ```ts ignore
 * const io = processIo();
 * process.exit(await io.finish(await main(process.argv.slice(2), io)));
 * ```
 */
export function processIo(): ProcessIo {
  const controller = new AbortController();
  let listening = false;
  const stdout = new OutputStream(process.stdout, (error) => {
    controller.abort(new Error(`Cannot write to standard output: ${error.message}`));
  });
  const stderr = new OutputStream(process.stderr, () => {
    // Nobody reads the messages any more; the command itself goes on.
  });
  const flush = async () => void await Promise.all([stdout.flush(), stderr.flush()]);
  return {
    stdout: (text) => stdout.write(text),
    stderr: (text) => stderr.write(text),
    flush,
    async *stdin() {
      process.stdin.setEncoding("utf8");
      for await (const chunk of process.stdin) yield chunk as string;
    },
    env: process.env,
    isTerminal: Boolean(process.stdout.isTTY),
    get signal(): AbortSignal {
      if (!listening) {
        listening = true;
        const onSignal = () => {
          if (controller.signal.aborted) process.exit(130);
          controller.abort();
        };
        process.on("SIGINT", onSignal);
        process.on("SIGTERM", onSignal);
      }
      return controller.signal;
    },
    async finish(code) {
      await flush();
      const error = stdout.error;
      if (error === undefined) return code;
      if (error.code === "EPIPE") return EXIT_BROKEN_PIPE;
      stderr.write(`apalis: cannot write to standard output: ${error.message}\n`);
      await stderr.flush();
      return code === 0 ? 1 : code;
    },
  };
}

/** One output stream: writes in order, remembers the first error and drops writes after it. */
class OutputStream {
  /** The first write error (`code` EPIPE: the reader went away). */
  error: NodeJS.ErrnoException | undefined;
  #stream: Writable;
  #onError: (error: NodeJS.ErrnoException) => void;
  /** Settles when the latest write has been handed to the system. */
  #written: Promise<void> = Promise.resolve();
  /** Settles on the first error: writes queued behind it may never call back. */
  #failed: Promise<void>;
  #fail!: () => void;

  constructor(stream: Writable, onError: (error: NodeJS.ErrnoException) => void) {
    this.#stream = stream;
    this.#onError = onError;
    this.#failed = new Promise((resolve) => this.#fail = resolve);
    // Without a listener, EPIPE would be thrown as an uncaught error with a stack trace.
    stream.on("error", (error) => this.#record(error));
  }

  write(text: string): void {
    if (this.error !== undefined || text === "") return;
    this.#written = new Promise((resolve) => {
      try {
        this.#stream.write(text, (error) => {
          if (error) this.#record(error);
          resolve();
        });
      } catch (error) {
        // Deno writes files synchronously and throws their errors (a full disk) from write().
        this.#record(error as NodeJS.ErrnoException);
        resolve();
      }
    });
  }

  flush(): Promise<void> {
    return Promise.race([this.#written, this.#failed]);
  }

  #record(error: NodeJS.ErrnoException): void {
    if (this.error !== undefined) return;
    // Deno's own error for a closed pipe carries no errno code.
    if (error.code === undefined && error.name === "BrokenPipe") error.code = "EPIPE";
    this.error = error;
    this.#fail();
    this.#onError(error);
  }
}
