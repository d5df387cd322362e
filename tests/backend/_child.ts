/**
 * The parent's side of the cross-process tests: starts `worker_child.ts` processes on a
 * database's location, waits for their `ready` line, stops or kills them, and reads the
 * executions they recorded.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ExecutionRecord } from "./worker_child.ts";

export type { ExecutionRecord };

const ROOT = new URL("../../", import.meta.url).pathname;
const CHILD = new URL("./worker_child.ts", import.meta.url).pathname;
/** Liveness bound for a child to start or to exit (not a speed assertion). */
const CHILD_TIMEOUT_MS = 60_000;

/** How a child ended. */
export interface ChildExit {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** A running `worker_child.ts`; disposing kills it (if still running) and reaps it. */
export interface ChildWorker extends AsyncDisposable {
  readonly name: string;
  readonly pid: number;
  /** Resolves once the worker has registered (its `ready` line); rejects if it exits first. */
  readonly ready: Promise<void>;
  /** Resolves when the process has exited and its output is read. */
  readonly exited: Promise<ChildExit>;
  /** Sends a signal (`SIGTERM`: graceful stop; `SIGKILL`: crash). */
  kill(signal: Deno.Signal): void;
  /** On PostgreSQL: the database URL and the `application_name` of the child's sessions. */
  readonly sessions?: { url: string; applicationName: string };
}

let spawned = 0;

/**
 * Starts `worker_child.ts --location LOCATION --name NAME ...args` (or another child `script`
 * that takes the same two options and prints the same `ready` line).
 */
export function spawnChild(
  location: string,
  name: string,
  args: string[] = [],
  script: string = CHILD,
): ChildWorker {
  // On PostgreSQL its sessions carry a name of their own, so that a crash can wait for them.
  let sessions: ChildWorker["sessions"];
  if (/^postgres(ql)?:/.test(location)) {
    const url = new URL(location);
    const applicationName = `apalis-child-${Deno.pid}-${++spawned}`;
    url.searchParams.set("application_name", applicationName);
    sessions = { url: location, applicationName };
    location = url.toString();
  }
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, "--location", location, "--name", name, ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stdout = "";
  let onReady!: () => void;
  const readyLine = new Promise<void>((resolve) => onReady = resolve);
  const readOut = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      stdout += chunk;
      if (/^ready /m.test(stdout)) onReady();
    }
  })();
  const readErr = new Response(child.stderr).text();
  const exited = Promise.all([child.status, readOut, readErr]).then(([status, , stderr]) => ({
    code: status.code,
    signal: status.signal,
    stdout,
    stderr,
  }));
  const ready = Promise.race([
    readyLine,
    exited.then((exit) => {
      throw new Error(
        `worker ${name} exited (${exit.code}, ${exit.signal}) before it was ready: ${exit.stderr}`,
      );
    }),
  ]);
  const readyWithin = withTimeout(ready, `worker ${name} to be ready`);
  readyWithin.catch(() => {}); // observed by whoever awaits it; unobserved, it must not crash
  let running = true;
  void exited.then(() => running = false);
  return {
    name,
    pid: child.pid,
    sessions,
    ready: readyWithin,
    exited,
    kill(signal) {
      if (running) child.kill(signal);
    },
    async [Symbol.asyncDispose]() {
      if (running) {
        try {
          child.kill("SIGKILL");
        } catch {
          // It exited meanwhile.
        }
      }
      await exited;
    },
  };
}

/** Stops a child with SIGTERM and asserts it exited 0 with nothing on stderr. */
export async function stopChild(child: ChildWorker): Promise<void> {
  child.kill("SIGTERM");
  const exit = await withTimeout(child.exited, `worker ${child.name} to exit after SIGTERM`);
  assert.equal(
    exit.code,
    0,
    `worker ${child.name} exited with ${exit.code} (${exit.signal}): ${exit.stderr}`,
  );
  assert.equal(exit.stderr.trim(), "", `worker ${child.name} printed to stderr`);
}

/** Kills a child with SIGKILL (a crash) and waits until the process is gone. */
export async function crashChild(child: ChildWorker): Promise<void> {
  child.kill("SIGKILL");
  const exit = await withTimeout(child.exited, `worker ${child.name} to die`);
  assert.equal(exit.signal, "SIGKILL", `worker ${child.name} ended with ${exit.code} instead`);
  if (child.sessions) await sessionsGone(child.name, child.sessions);
}

/**
 * Waits until PostgreSQL has ended a killed child's sessions: until then, a statement it sent
 * before it died (a COMMIT of claims) may still commit, and what it held is not settled.
 */
async function sessionsGone(
  name: string,
  { url, applicationName }: { url: string; applicationName: string },
): Promise<void> {
  const { default: postgres } = await import("postgres");
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const deadline = Date.now() + CHILD_TIMEOUT_MS;
    while (true) {
      const [row] = await sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = ${applicationName}`;
      if (row!.n === 0) return;
      assert.ok(Date.now() < deadline, `the sessions of worker ${name} outlived it`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** The non-empty lines of `path`, none when children have not created it yet. */
async function readLines(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  return text.split("\n").filter((line) => line !== "");
}

/** The executions recorded in `path` by children started with `--record path`. */
export async function readRecords(path: string): Promise<ExecutionRecord[]> {
  return (await readLines(path)).map((line) => {
    const [taskId, attempt, worker, pid, node, runId] = line.split(" ");
    assert.ok(taskId && attempt && worker && pid && node && runId, `a whole line: ${line}`);
    return {
      taskId,
      attempt: Number(attempt),
      worker,
      pid: Number(pid),
      node: node === "-" ? null : node,
      runId: runId === "-" ? null : runId,
    };
  });
}

/** The handler runs recorded in `path` by children started with `--spans path`. */
export async function readSpans(
  path: string,
): Promise<{ taskId: string; key: string; start: number; end: number }[]> {
  return (await readLines(path)).map((line) => {
    const [taskId, start, end, key] = line.split(" ");
    assert.ok(taskId && start && end && key, `a whole line: ${line}`);
    return { taskId, key, start: Number(start), end: Number(end) };
  });
}

/** The aborts recorded in `path` by children started with `--aborts path`. */
export async function readAborts(
  path: string,
): Promise<{ taskId: string; at: number; name: string; message: string }[]> {
  return (await readLines(path)).map((line) => {
    const [taskId, at, name, ...message] = line.split(" ");
    assert.ok(taskId && at && name, `a whole line: ${line}`);
    return { taskId, at: Number(at), name, message: message.join(" ") };
  });
}

/** How many times each key occurs. */
export function countBy<T>(items: readonly T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

async function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Timed out after ${CHILD_TIMEOUT_MS} ms waiting for ${what}`)),
      CHILD_TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
