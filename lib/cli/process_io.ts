import process from "node:process";
import type { CliIo } from "./io.ts";

/**
 * The real process's {@linkcode CliIo}, on Deno and Bun alike. `signal` installs SIGINT and
 * SIGTERM listeners only when a command asks for it (so Ctrl-C still ends other commands at
 * once); a second signal exits at once with code 130.
 */
export function processIo(): CliIo {
  let controller: AbortController | undefined;
  return {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    async *stdin() {
      process.stdin.setEncoding("utf8");
      for await (const chunk of process.stdin) yield chunk as string;
    },
    env: process.env,
    isTerminal: Boolean(process.stdout.isTTY),
    get signal(): AbortSignal {
      if (!controller) {
        const ctrl = controller = new AbortController();
        const onSignal = () => {
          if (ctrl.signal.aborted) process.exit(130);
          ctrl.abort();
        };
        process.on("SIGINT", onSignal);
        process.on("SIGTERM", onSignal);
      }
      return controller.signal;
    },
  };
}
