/**
 * The scenarios that need other processes: enqueue→start latency when another process pushes,
 * the drain of one queue by k worker processes, and the raw ceiling's drain by k processes, on
 * either backend (a {@linkcode BenchTarget}: the children get its `childFlags` and the database's
 * location). Both sides live here: the parent's measurement and the child's part, which runs as
 * `bench.ts` with hidden flags (see {@linkcode benchCommand}) under the runtime of the parent,
 * spawned with `node:child_process` so that the benchmark runs under Deno and Bun alike.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Task, WorkerBuilder } from "../mod.ts";
import {
  assertCount,
  type Email,
  email,
  epochMs,
  progress,
  QUEUE,
  rate,
  sleep,
} from "./_shared.ts";
import type { BenchTarget } from "./_target.ts";
import { benchDrain, type Latency, latencyWorker, summarize } from "./scenarios.ts";

const BENCH_SCRIPT = fileURLToPath(new URL("./bench.ts", import.meta.url));

/**
 * The command line that runs `bench.ts` with `flags` under the current runtime
 * (`deno run -A bench.ts …` or `bun run bench.ts …`).
 */
export function benchCommand(flags: readonly string[]): [string, string[]] {
  const isDeno = "Deno" in globalThis;
  const isBun = (process.versions as Record<string, string | undefined>).bun !== undefined;
  if (!isDeno && !isBun) {
    throw new Error("Cannot start a benchmark process: the benchmark runs under Deno or Bun");
  }
  return [process.execPath, [...(isDeno ? ["run", "-A"] : ["run"]), BENCH_SCRIPT, ...flags]];
}

/** A running child: its stderr so far, and how it ended once it has. */
interface Child {
  label: string;
  process: ChildProcess;
  stderr(): string;
  /** Whether it has exited and its output streams closed. */
  closed: boolean;
  /** Resolves (never rejects) once it has exited and its output streams closed. */
  done: Promise<{ code: number | null; signal: string | null; error?: Error }>;
}

/**
 * Spawns `bench.ts` with `flags`; each line it prints on stdout goes to `onLine`. With `stdin`,
 * the child's stdin is a pipe (`child.process.stdin`), otherwise it is closed.
 */
function startChild(
  label: string,
  flags: readonly string[],
  onLine?: (line: string) => void,
  stdin = false,
): Child {
  const [command, args] = benchCommand(flags);
  const proc = spawn(command, args, { stdio: [stdin ? "pipe" : "ignore", "pipe", "pipe"] });
  let stderr = "";
  proc.stderr?.setEncoding("utf8").on("data", (chunk: string) => stderr += chunk);
  let pending = "";
  proc.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    pending += chunk;
    for (let end = pending.indexOf("\n"); end >= 0; end = pending.indexOf("\n")) {
      const line = pending.slice(0, end);
      pending = pending.slice(end + 1);
      onLine?.(line);
    }
  });
  const child: Child = {
    label,
    process: proc,
    stderr: () => stderr.trim(),
    closed: false,
    done: new Promise((resolve) => {
      proc.once("error", (error) => {
        child.closed = true;
        resolve({ code: null, signal: null, error });
      });
      // "close", not "exit": every line it printed has been read.
      proc.once("close", (code, signal) => {
        child.closed = true;
        resolve({ code, signal });
      });
    }),
  };
  return child;
}

/** Waits for `child` to end; throws unless it exited with code 0 within `timeoutMs`. */
async function cleanExit(child: Child, timeoutMs: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  const ended = await Promise.race([child.done, timeout]);
  clearTimeout(timer);
  if (ended === "timeout") {
    throw new Error(`the ${child.label} process did not exit within ${timeoutMs / 1000} s`);
  }
  if (ended.error) {
    throw new Error(`Cannot run the ${child.label} process: ${ended.error.message}`, {
      cause: ended.error,
    });
  }
  if (ended.code !== 0) {
    throw new Error(
      `the ${child.label} process exited with ${ended.code ?? ended.signal}: ${child.stderr()}`,
    );
  }
}

/** Resolves as `promise` does, or rejects with `message()` once `ms` have passed. */
async function within<T>(promise: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message())), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A line a child printed, parsed; undefined when it is not JSON (a runtime's notice). */
function jsonLine<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/**
 * A child's side: prints `line` as one JSON line on stdout; resolves once it is written. Name
 * the line's type (`printLine<DrainerLine>(…)`) to have it checked.
 */
function printLine<Line extends object>(line: Line): Promise<void> {
  return new Promise((resolve) =>
    process.stdout.write(`${JSON.stringify(line)}\n`, () => resolve())
  );
}

/** Kills (SIGKILL) the children still running and waits for them: none is left behind. */
async function killAll(children: readonly Child[]): Promise<void> {
  for (const child of children) if (!child.closed) child.process.kill("SIGKILL");
  await Promise.all(children.map((child) => child.done));
}

/**
 * Rejects as soon as one of `children` ends before it was `finished` (by default, none is: a
 * child should run until told to stop); never resolves otherwise.
 */
function anyEnded(
  children: readonly Child[],
  finished: (index: number) => boolean = () => false,
): Promise<never> {
  return Promise.race(children.map(async (child, index) => {
    const { code, signal, error } = await child.done;
    if (finished(index)) return new Promise<never>(() => {});
    throw new Error(
      `the ${child.label} process ended early (${
        error?.message ?? code ?? signal
      }): ${child.stderr()}`,
    );
  }));
}

// ---------------------------------------------------------------------------------------------
// Enqueue→start latency when another process pushes.

/**
 * The child's side of the cross-process latency: pushes `count` stamped tasks 10 ms apart to the
 * database at `location`.
 */
export async function runPusher(
  target: BenchTarget,
  location: string,
  count: number,
): Promise<void> {
  const db = await target.open(location);
  try {
    const storage = db.storage<{ pushedAt: number }>();
    for (let i = 0; i < count; i++) {
      await storage.push({ pushedAt: epochMs() });
      await sleep(10);
    }
  } finally {
    await db.close();
  }
}

/**
 * Enqueue→start latency with an idle worker (concurrency 1) in this process while a child
 * process pushes `n` tasks 10 ms apart, each stamped with {@linkcode epochMs} (the handler
 * subtracts the stamp from its own clock); p50 and p99 in ms.
 */
export async function benchLatencyOtherProcess(
  target: BenchTarget,
  n: number,
): Promise<Latency> {
  await using temp = await target.fresh();
  const storage = temp.storage<{ pushedAt: number }>();
  const { worker, latencies, idle, all } = latencyWorker(storage, "bench-latency-ipc", n, epochMs);
  const running = worker.run();
  const children: Child[] = [];
  try {
    await Promise.race([idle, running]);
    const flags = ["--pusher", temp.location, "--count", String(n), ...target.childFlags];
    children.push(startChild("pushing", flags));
    await cleanExit(children[0]!, 120_000);
    // Every task was committed: all must start soon (a missed wake-up would still be polled).
    await within(
      Promise.race([all, running]),
      30_000,
      () => `only ${latencies.length} of ${n} tasks started within 30 s`,
    );
  } finally {
    await killAll(children);
    await worker.stop();
  }
  await running;
  await assertCount(storage, "done", n);
  return summarize(latencies);
}

// ---------------------------------------------------------------------------------------------
// Drain by k worker processes.

/** What a drainer prints on stdout, one JSON object a line. */
interface DrainerLine {
  /** Tasks this worker acked so far (a `success` event follows the commit of the ack). */
  acked: number;
  /** {@linkcode epochMs} at the last `success` event; 0 before the first. */
  lastAckAt: number;
  /** Errors the worker reported (each also printed on stderr). */
  errors: number;
  /** Present on the last line, printed after the worker exited. */
  final?: true;
  /** On the last line: the process's CPU time (user + system) in ms, for the progress output. */
  cpuMs?: number;
}

/**
 * Options of a drainer process (hidden flags `--drainer <db> --name … --concurrency …`, and
 * `--work <kb>` for tasks that do work); `path` is the database's location (a file's path or a
 * PostgreSQL URL).
 */
export interface DrainerOptions {
  path: string;
  name: string;
  concurrency: number;
  /** No-op tasks it drains on a database of its own first (`--warm-up`). */
  warmUp: number;
  /** The CPU work each task does: hashing this many KB of memory (0: none, a no-op task). */
  workKb: number;
}

/**
 * A task handler that does CPU work of its own, as a real handler would: an FNV-1a hash over
 * `kb` KB of memory (64 KB: ~90 µs on the 2-core machine, in Deno and Bun alike). The hashes go
 * into a variable the handler keeps, so that the work cannot be optimised away.
 */
function hashingHandler(kb: number): (task: Email) => void {
  const buffer = new Uint8Array(kb * 1024).map((_, i) => (i * 31) & 0xff);
  let sink = 0;
  return (task) => {
    let hash = 0x811c9dc5 ^ task.n;
    for (let i = 0; i < buffer.length; i++) hash = Math.imul(hash ^ buffer[i]!, 0x01000193);
    sink ^= hash;
  };
}

/**
 * The child's side of the multi-process drain: runs a worker of no-op tasks on `path` until
 * SIGTERM (`handleSignals(true)`: a graceful stop), printing its progress (a
 * {@linkcode DrainerLine}) every 20 ms while it changes and once more after the worker exited.
 * Resolves to the exit code: 0, or 1 if the worker reported errors.
 */
export async function runDrainer(target: BenchTarget, options: DrainerOptions): Promise<number> {
  const { path, name, concurrency, warmUp, workKb } = options;
  // Warm the code up first, on a database of its own, as the parent process warms itself up: a
  // cold process drains slowly while the runtime compiles the worker's code (one process, 50,000
  // tasks: ~80,000/s cold, ~94,000/s warm), and a worker process normally runs for far longer
  // than one drain.
  await benchDrain(target, warmUp, concurrency);
  const db = await target.open(path);
  const state: DrainerLine = { acked: 0, lastAckAt: 0, errors: 0 };
  let printed = -1;
  const timer = setInterval(() => {
    if (state.acked === printed) return;
    printed = state.acked;
    void printLine<DrainerLine>(state);
  }, 20);
  try {
    const storage = db.storage<Email>();
    const worker = new WorkerBuilder(name)
      .backend(storage)
      .concurrency(concurrency)
      .handleSignals(true)
      .onEvent((_ctx, event) => {
        if (event.type === "success") {
          state.acked++;
          state.lastAckAt = epochMs();
        } else if (event.type === "error") {
          state.errors++;
          const error = event.error;
          progress(`${name}: ${error instanceof Error ? error.message : String(error)}`);
        }
      })
      .build(workKb > 0 ? hashingHandler(workKb) : () => {});
    await worker.run();
  } finally {
    clearInterval(timer);
    await db.close();
  }
  const cpu = process.cpuUsage();
  await printLine<DrainerLine>({
    ...state,
    final: true,
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
  });
  return state.errors === 0 ? 0 : 1;
}

/**
 * No-op tasks (or ceiling rows) each drainer process runs on a database of its own before it
 * joins the drain, in a full run.
 */
export const DRAINER_WARM_UP = 20_000;

/** The lead time from the push to T, when the tasks fall due (doubled on a retry). */
function initialMarginMs(n: number): number {
  return 1000 + Math.ceil(n / 25); // 50,000 tasks: 3 s (pushAll usually needs < 1 s of it)
}

/** The drain needs the tasks committed at least this long before they fall due. */
const NOTICE_MS = 300; // a worker hears of another process's commit within 250 ms at worst

class MarginTooShortError extends Error {}

/**
 * `n` tasks drained by `k` worker processes (concurrency `concurrency` each, each warmed up on
 * `warmUp` tasks of its own first), no-op tasks or, with `workKb`, tasks that each hash that many
 * KB ({@linkcode hashingHandler}); tasks/s from the moment the tasks fall due to the last ack.
 * Retries with a longer lead time when the push took too long to leave the workers time to hear
 * of it.
 */
export async function benchDrainProcesses(
  target: BenchTarget,
  n: number,
  k: number,
  concurrency: number,
  workKb = 0,
  warmUp = DRAINER_WARM_UP,
): Promise<number> {
  let margin = initialMarginMs(n);
  for (let attempt = 1;; attempt++) {
    try {
      return await drainProcessesOnce(target, n, k, concurrency, workKb, warmUp, margin);
    } catch (error) {
      if (!(error instanceof MarginTooShortError) || attempt === 3) throw error;
      progress(`    ${error.message}; again with ${2 * margin} ms`);
      margin *= 2;
    }
  }
}

async function drainProcessesOnce(
  target: BenchTarget,
  n: number,
  k: number,
  concurrency: number,
  workKb: number,
  warmUp: number,
  marginMs: number,
): Promise<number> {
  await using temp = await target.fresh();
  const storage = temp.storage<Email>();
  const names = Array.from({ length: k }, (_, i) => `w${i + 1}`);
  const lines = new Map<string, DrainerLine>();
  let acked = 0;
  let lastProgress = performance.now();
  let resolveAll!: () => void;
  const all = new Promise<void>((resolve) => resolveAll = resolve);
  const children: Child[] = [];
  try {
    for (const name of names) {
      const flags = [
        "--drainer",
        temp.location,
        "--name",
        name,
        "--concurrency",
        String(concurrency),
        "--warm-up",
        String(warmUp),
        ...target.childFlags,
        ...(workKb > 0 ? ["--work", String(workKb)] : []),
      ];
      children.push(startChild(`draining ${name}`, flags, (text) => {
        const line = jsonLine<DrainerLine>(text);
        if (line === undefined) return;
        acked += line.acked - (lines.get(name)?.acked ?? 0);
        lines.set(name, line);
        lastProgress = performance.now();
        if (acked >= n) resolveAll();
      }));
    }
    const ended = anyEnded(children);
    ended.catch(() => {}); // raced below; a late end after the drain is checked by cleanExit

    // 1. Every worker registered and alive.
    const deadline = performance.now() + 60_000;
    while (true) {
      const alive = (await storage.listWorkers(QUEUE)).filter((w) => w.alive);
      if (names.every((name) => alive.some((w) => w.name === name))) break;
      if (performance.now() > deadline) {
        throw new Error(`only ${alive.length} of ${k} draining workers were alive after 60 s`);
      }
      await Promise.race([sleep(20), ended]);
    }

    // 2. The tasks, due at T: the workers hear of the commit, learn when the first task is due,
    //    and sleep until then.
    const dueAt = Math.ceil(epochMs()) + marginMs;
    await storage.pushAll(
      Array.from({ length: n }, (_, i) => new Task(email(i), { runAt: dueAt })),
    );
    const lead = dueAt - epochMs();
    if (lead < NOTICE_MS) {
      throw new MarginTooShortError(
        `the push ended ${Math.round(lead)} ms before the tasks fell due (${NOTICE_MS} needed)`,
      );
    }

    // 3. Until every task was acked; liveness only: fail if nothing moves for 60 s.
    let stalled: ReturnType<typeof setInterval> | undefined;
    const stall = new Promise<never>((_, reject) => {
      stalled = setInterval(() => {
        if (performance.now() - lastProgress > 60_000 && epochMs() > dueAt) {
          reject(new Error(`the drain stalled at ${acked} of ${n} tasks for 60 s`));
        }
      }, 1000);
    });
    try {
      await Promise.race([all, ended, stall]);
    } finally {
      clearInterval(stalled);
    }
    const lastAckAt = Math.max(...[...lines.values()].map((line) => line.lastAckAt));
    if (!(lastAckAt > dueAt)) {
      throw new Error(`the last ack (${lastAckAt}) is not after the tasks fell due (${dueAt})`);
    }

    // 4. A graceful stop: each exits 0 and reports its final count.
    // process.kill, not child.kill: Deno's ChildProcess reports a signal it sent itself as the
    // cause of the exit (exit null, SIGTERM) even when the child handled it and exited 0.
    for (const child of children) {
      if (child.process.pid !== undefined) process.kill(child.process.pid, "SIGTERM");
    }
    for (const child of children) await cleanExit(child, 30_000);
    const finals = names.map((name) => lines.get(name));
    if (finals.some((line) => line?.final !== true)) {
      throw new Error("a draining process exited without printing its final count");
    }
    const total = finals.reduce((sum, line) => sum + line!.acked, 0);
    if (total !== n) throw new Error(`the workers acked ${total} tasks, expected ${n}`);
    await assertCount(storage, "done", n);
    progress(
      `    ${k} process${k > 1 ? "es" : ""}: ${
        names.map((name, i) => `${name} ${finals[i]!.acked} (cpu ${finals[i]!.cpuMs} ms)`).join(
          ", ",
        )
      } in ${Math.round(lastAckAt - dueAt)} ms`,
    );
    return rate(n, lastAckAt - dueAt);
  } finally {
    await killAll(children);
  }
}

// ---------------------------------------------------------------------------------------------
// The raw ceiling's drain by k processes: what the database itself does with several writers.

/** What a ceiling drainer prints on stdout, one JSON object a line. */
interface CeilingDrainerLine {
  /** Printed once warm and connected: it then reads the start time (epoch ms) from stdin. */
  ready?: true;
  /** On the last line: rows it acked, when it started and when it acked the last. */
  acked?: number;
  startedAt?: number;
  lastAckAt?: number;
}

/**
 * The child's side of the multi-process ceiling (hidden flags `--ceiling-drainer <db> --name
 * …`): warms up on a table of its own, connects to `path` (`target.raw`: on SQLite, waiting for
 * the lock in SQLite's busy handler, as a bare SQLite program would; on PostgreSQL, one
 * connection), says it is ready, reads the start time from stdin, sleeps until then and drains
 * (claim 100, ack them) until nothing is left.
 */
export async function runCeilingDrainer(
  target: BenchTarget,
  options: { path: string; name: string; warmUp: number },
): Promise<number> {
  const { path, name, warmUp } = options;
  await target.raw.warmUp(warmUp);
  const db = await target.raw.connect(path);
  try {
    const startAt = new Promise<number>((resolve, reject) => {
      let text = "";
      process.stdin.setEncoding("utf8").on("data", (chunk: string) => {
        text += chunk;
        if (text.includes("\n")) resolve(Number(text.trim()));
      });
      process.stdin.on("end", () => reject(new Error("stdin closed before the start time")));
    });
    await printLine<CeilingDrainerLine>({ ready: true });
    const start = await startAt;
    process.stdin.pause();
    await sleep(start - epochMs());
    const startedAt = epochMs();
    const acked = await db.drain(name);
    await printLine<CeilingDrainerLine>({ acked, startedAt, lastAckAt: epochMs() });
  } finally {
    await db.close();
  }
  return 0;
}

/** How late a ceiling drainer may start (after the start time) for its run to count. */
const CEILING_LATE_MS = 20;

/**
 * `n` rows of the raw ceiling's table drained by `k` processes at once, each claiming 100 and
 * acking them in two transactions (`target.raw`); rows/s from the common start time to the last
 * ack. Each child warms up and connects first; the start time is sent once all are ready. A run
 * where a child started more than 20 ms late is repeated (at most twice).
 */
export async function ceilingClaimAckProcesses(
  target: BenchTarget,
  n: number,
  k: number,
  warmUp = DRAINER_WARM_UP,
): Promise<number> {
  for (let attempt = 1;; attempt++) {
    const { perSecond, lateMs } = await ceilingProcessesOnce(target, n, k, warmUp);
    if (lateMs <= CEILING_LATE_MS) return perSecond;
    const late = `a ceiling drainer started ${Math.round(lateMs)} ms late`;
    if (attempt === 3) throw new Error(`${late}, 3 times`);
    progress(`    ${late}; again`);
  }
}

async function ceilingProcessesOnce(
  target: BenchTarget,
  n: number,
  k: number,
  warmUp: number,
): Promise<{ perSecond: number; lateMs: number }> {
  await using table = await target.raw.preload(n);
  const children: Child[] = [];
  try {
    const lines = new Map<string, CeilingDrainerLine>();
    let resolveReady!: () => void;
    const allReady = new Promise<void>((resolve) => resolveReady = resolve);
    let resolveDone!: () => void;
    const allDone = new Promise<void>((resolve) => resolveDone = resolve);
    const names = Array.from({ length: k }, (_, i) => `c${i + 1}`);
    const flags = (name: string) => [
      "--ceiling-drainer",
      table.location,
      "--name",
      name,
      "--warm-up",
      String(warmUp),
      ...target.childFlags,
    ];
    for (const name of names) {
      children.push(startChild(`ceiling ${name}`, flags(name), (text) => {
        const line = jsonLine<CeilingDrainerLine>(text);
        if (line === undefined) return;
        lines.set(name, line);
        const all = [...lines.values()];
        if (all.length === k && all.every((l) => l.ready)) resolveReady();
        if (all.length === k && all.every((l) => l.acked !== undefined)) resolveDone();
      }, true));
    }
    // A child ends by itself once it printed its count; before that, its end is a failure.
    const ended = anyEnded(children, (i) => lines.get(names[i]!)?.acked !== undefined);
    ended.catch(() => {}); // raced below
    const waited = (what: string) => () => `waited 120 s for the ceiling drainers to ${what}`;
    await within(Promise.race([allReady, ended]), 120_000, waited("get ready"));
    const startAt = Math.ceil(epochMs()) + 100;
    for (const child of children) child.process.stdin?.end(`${startAt}\n`);
    await within(Promise.race([allDone, ended]), 120_000, waited("finish"));
    for (const child of children) await cleanExit(child, 30_000);
    const finals = names.map((name) => lines.get(name)!);
    const total = finals.reduce((sum, line) => sum + line.acked!, 0);
    if (total !== n) throw new Error(`the ceiling drainers acked ${total} rows, expected ${n}`);
    await table.assertDrained();
    const lastAckAt = Math.max(...finals.map((line) => line.lastAckAt!));
    const lateMs = Math.max(...finals.map((line) => line.startedAt! - startAt));
    progress(
      `    ceiling, ${k} process${k > 1 ? "es" : ""}: ${
        names.map((name, i) => `${name} ${finals[i]!.acked}`).join(", ")
      } in ${Math.round(lastAckAt - startAt)} ms`,
    );
    return { perSecond: rate(n, lastAckAt - startAt), lateMs };
  } finally {
    await killAll(children);
  }
}
