/**
 * Helpers for the Deno end-to-end tests that run `worker_process.ts` in child processes.
 *
 * @module
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;
const WORKER = new URL("./worker_process.ts", import.meta.url).pathname;

/**
 * Starts `deno run -A [runtimeFlags] tests/e2e/worker_process.ts` on `path`; `runtimeFlags` are
 * Deno's own (e.g. `--v8-flags=--expose-gc`), `extra` the program's.
 */
export function spawnWorker(
  path: string,
  name: string,
  extra: string[],
  runtimeFlags: string[] = [],
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...runtimeFlags, WORKER, "--db", path, "--name", name, ...extra],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** How a child process ended. */
export interface Exit {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** Waits for a child to exit; kills it and throws if it takes longer than `timeoutMs`. */
export async function exitOf(
  child: Deno.ChildProcess,
  what: string,
  timeoutMs: number,
): Promise<Exit> {
  const output = child.output();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  const first = await Promise.race([output, timedOut]);
  clearTimeout(timer);
  if (first === "timeout") {
    child.kill("SIGKILL");
    const late = await output;
    throw new Error(
      `${what} did not exit within ${timeoutMs} ms; stderr: ${
        new TextDecoder().decode(late.stderr)
      }`,
    );
  }
  return {
    code: first.code,
    signal: first.signal,
    stdout: new TextDecoder().decode(first.stdout),
    stderr: new TextDecoder().decode(first.stderr),
  };
}

/** Kills children that are still running (after a failed assertion) and reaps them. */
export async function reap(children: Deno.ChildProcess[]): Promise<void> {
  await Promise.all(children.map(async (child) => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    try {
      await child.output();
    } catch {
      // Already consumed by exitOf().
    }
  }));
}

/** Asserts that a child exited with code 0 and printed nothing to stderr. */
export function assertCleanExit(exit: Exit, what: string): void {
  assert.equal(exit.code, 0, `${what} exited with ${exit.code} (${exit.signal}): ${exit.stderr}`);
  assert.equal(exit.stderr.trim(), "", `${what} printed to stderr`);
}
