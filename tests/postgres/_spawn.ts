/**
 * Starts `pg_worker.ts` in child processes (Deno), and reads their `ready` line.
 *
 * @module
 */
export { assertCleanExit, type Exit, exitOf, reap } from "../e2e/processes.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const WORKER = new URL("./pg_worker.ts", import.meta.url).pathname;

/** Starts `deno run -A tests/postgres/pg_worker.ts --url URL --name NAME ...extra`. */
export function spawnPgWorker(url: string, name: string, extra: string[] = []): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", WORKER, "--url", url, "--name", name, ...extra],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/**
 * Starts a worker whose stdout is read line by line: `ready` resolves when it prints `ready`
 * (idle, listening); `exited` gives its exit code and stderr.
 */
export function spawnReadyWorker(
  url: string,
  name: string,
  extra: string[] = [],
): {
  child: Deno.ChildProcess;
  ready: Promise<void>;
  exited: Promise<{ code: number; stderr: string }>;
} {
  const child = spawnPgWorker(url, name, extra);
  let onReady!: () => void;
  const ready = new Promise<void>((resolve) => onReady = resolve);
  const stdout = (async () => {
    let buffer = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      if (buffer.split("\n").includes("ready")) onReady();
    }
  })();
  const stderr = new Response(child.stderr).text();
  const exited = (async () => {
    const status = await child.status;
    await stdout;
    return { code: status.code, stderr: await stderr };
  })();
  return { child, ready, exited };
}
