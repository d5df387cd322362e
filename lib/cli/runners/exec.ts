import type { TaskContext } from "../../../mod.ts";
import { type ChildProcess, spawn } from "node:child_process";
import { Buffer } from "node:buffer";
import process from "node:process";
import { formatSize } from "../format.ts";
import { LineSplitter } from "./lines.ts";
import {
  DEFAULT_MAX_OUTPUT,
  describe,
  ERROR_TEXT_MAX,
  excerpt,
  parseOutput,
  type Runner,
  RunnerError,
} from "./output.ts";

/** After SIGTERM, how long a command gets before SIGKILL. */
const KILL_GRACE_MS = 2000;
/** After the command exits, how long its output pipes may stay open (a background child). */
const CLOSE_GRACE_MS = 1000;

/** Options of {@linkcode execRunner}. */
export interface ExecRunnerOptions {
  /**
   * The most bytes a command may write to stdout (stored as the result): past it the command is
   * terminated and the attempt fails. @default {16 MiB}
   */
  maxOutputBytes?: number;
}

/**
 * The `--exec CMD` runner: runs `/bin/sh -c CMD` per task in its own process group, with the
 * payload as JSON on stdin and `APALIS_TASK_ID`, `APALIS_ATTEMPT`, `APALIS_QUEUE` added to `env`.
 * Exit code 0 resolves with the parsed standard output; anything else rejects with a
 * `CommandError` holding the exit code and the end of stderr. Each line the command writes to
 * stderr is also logged as it comes (`ctx.log`: see `apalis logs`); a last line without a newline
 * is logged when the command exits. An aborted attempt (timeout,
 * shutdown) sends the group SIGTERM, then SIGKILL after a grace period, and rejects with the abort
 * reason.
 *
 * If this process exits abruptly (a second Ctrl-C), running commands get SIGTERM: in their own
 * process groups, the terminal's signal does not reach them. `close()` resolves once terminated
 * commands are gone or had their SIGKILL, and stops watching for the exit.
 *
 * @example Usage
 * ```ts ignore
 * const run = execRunner("./send-email.sh", process.env, { maxOutputBytes: 1024 ** 2 });
 * ```
 */
export function execRunner(
  command: string,
  env: Readonly<Record<string, string | undefined>>,
  options: ExecRunnerOptions = {},
): Runner {
  const maxOutput = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
  /** Sends SIGTERM to one running command's process group. */
  const running = new Set<() => void>();
  /** Settle once a terminated command's group is gone or got SIGKILL. */
  const reapers = new Set<Promise<void>>();
  const onExit = () => {
    for (const terminate of running) terminate();
  };
  process.on("exit", onExit);

  const run = (payload: unknown, ctx: TaskContext) =>
    new Promise<unknown>((resolve, reject) => {
      const signal = ctx.signal;
      if (signal.aborted) return reject(signal.reason);
      let child: ChildProcess;
      try {
        child = spawn("/bin/sh", ["-c", command], {
          detached: true, // its own process group: a timeout kills the whole pipeline
          stdio: ["pipe", "pipe", "pipe"],
          env: {
            ...env,
            APALIS_TASK_ID: ctx.taskId,
            APALIS_ATTEMPT: String(ctx.attempt),
            APALIS_QUEUE: ctx.queue,
          },
        });
      } catch (error) {
        return reject(new RunnerError("CommandError", `Cannot start /bin/sh: ${describe(error)}`));
      }
      const stdout: Uint8Array[] = [];
      let stdoutBytes = 0;
      let stderr = "";
      const lines = new LineSplitter((line) => ctx.log(line));
      let overflow = false;
      let failure: Error | undefined;
      let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
      let closeTimer: ReturnType<typeof setTimeout> | undefined;
      let settled = false;
      /** Set once the group got SIGTERM: skips the pending SIGKILL. */
      let cancelKill: (() => void) | undefined;

      /** Sends `sig` to the command's process group (0: whether it still exists). */
      const signalGroup = (sig: NodeJS.Signals | 0): boolean => {
        if (child.pid === undefined) return false;
        try {
          process.kill(-child.pid, sig);
          return true;
        } catch {
          return false;
        }
      };
      const killGroup = (sig: NodeJS.Signals) => {
        if (signalGroup(sig)) return;
        try {
          child.kill(sig);
        } catch {
          // already gone
        }
      };
      const sigterm = () => killGroup("SIGTERM");
      /** SIGTERM to the group, SIGKILL after the grace period (`close()` waits for it). */
      const terminate = () => {
        if (cancelKill) return;
        sigterm();
        const reaper = new Promise<void>((done) => {
          const timer = setTimeout(() => {
            killGroup("SIGKILL");
            done();
          }, KILL_GRACE_MS);
          cancelKill = () => {
            clearTimeout(timer);
            done();
          };
        });
        reapers.add(reaper);
        void reaper.then(() => reapers.delete(reaper));
      };
      signal.addEventListener("abort", terminate, { once: true });
      running.add(sigterm);

      const finish = () => {
        if (settled) return;
        settled = true;
        clearTimeout(closeTimer);
        lines.end();
        signal.removeEventListener("abort", terminate);
        running.delete(sigterm);
        child.stdout?.destroy();
        child.stderr?.destroy();
        // A terminated group that is gone needs no SIGKILL later.
        if (cancelKill && !signalGroup(0)) cancelKill();
        if (signal.aborted) reject(signal.reason);
        else if (failure) {
          reject(new RunnerError("CommandError", `Cannot run /bin/sh: ${failure.message}`));
        } else if (overflow) {
          reject(
            new RunnerError(
              "CommandError",
              `Command wrote more than ${
                formatSize(maxOutput)
              } to stdout (--max-output): it was killed, nothing stored`,
            ),
          );
        } else if (exit?.code === 0) {
          resolve(parseOutput(new TextDecoder().decode(Buffer.concat(stdout))));
        } else {
          const how = exit?.signal
            ? `was killed by ${exit.signal}`
            : `exited with code ${exit?.code}`;
          const end = excerpt(stderr, "tail");
          reject(
            new RunnerError(
              "CommandError",
              `Command ${how}${end === "" ? " (nothing on stderr)" : `: ${end}`}`,
            ),
          );
        }
      };

      child.on("error", (error) => {
        failure = error;
        finish();
      });
      child.stdout!.on("data", (chunk: Buffer) => {
        if (overflow) return;
        stdoutBytes += chunk.byteLength;
        if (stdoutBytes > maxOutput) {
          overflow = true;
          stdout.length = 0;
          terminate();
        } else {
          stdout.push(chunk);
        }
      });
      child.stderr!.setEncoding("utf8");
      child.stderr!.on("data", (chunk: string) => {
        stderr += chunk;
        lines.push(chunk);
        if (stderr.length > 4 * ERROR_TEXT_MAX) stderr = stderr.slice(-2 * ERROR_TEXT_MAX);
      });
      child.stdin!.on("error", () => {
        // The command need not read its input (EPIPE).
      });
      child.stdin!.end(JSON.stringify(payload) ?? "null");
      child.on("exit", (code, sig) => {
        if (settled) return;
        exit = { code, signal: sig };
        // Normally 'close' follows at once; a background process may hold the pipes open.
        closeTimer = setTimeout(finish, CLOSE_GRACE_MS);
      });
      child.on("close", (code, sig) => {
        exit ??= { code, signal: sig };
        finish();
      });
    });

  return Object.assign(run, {
    async close() {
      await Promise.all(reapers);
      process.off("exit", onExit);
    },
  });
}
