// deno-lint-ignore-file no-console
/**
 * Throughput and latency benchmark of the queue on a SQLite file.
 *
 * Runs under Deno (`deno task bench`, i.e. `deno run -A bench/bench.ts`) and Bun
 * (`bun run bench/bench.ts`): it uses only `node:` modules, `performance.now()` and `mod.ts`.
 *
 * Scenarios, each on a fresh database file in a temp dir:
 * 1. enqueue one by one: awaited `storage.push(i)`;
 * 2. `pushAll` of `Task` objects in one call;
 * 3. drain of preloaded no-op tasks by one worker, at concurrency 1 and 16 (from `worker.run()`
 *    until the worker exited after the last ack);
 * 4. enqueue→start latency with an idle worker (pushes 10 ms apart), p50 and p99;
 * 5. the same latency when another process pushes (a child process running this file with
 *    `--pusher <db file> --count n`, spawned with `node:child_process` under the same runtime;
 *    it stamps each task with the wall clock and the parent's worker subtracts it at start; the
 *    clock is `performance.timeOrigin + performance.now()`, i.e. `Date.now()` with sub-ms
 *    resolution, which both runtimes derive from the system clock).
 *
 * Flags: `--durability normal|full` (default `normal`), `--quick` (counts / 10, a smoke run),
 * `--json` (print JSON instead of a markdown table), `--runs n` (report the median of n runs,
 * each on a fresh file; default 3, or 1 with `--quick`). A warm-up on throwaway files precedes the measurements.
 * Progress goes to stderr.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  type Database,
  type Durability,
  openDatabase,
  SqliteStorage,
  Task,
  WorkerBuilder,
} from "../mod.ts";

/** One measured number. */
export interface BenchResult {
  /** Stable machine-readable key. */
  key: string;
  /** Human-readable description. */
  scenario: string;
  value: number;
  unit: "tasks/s" | "ms";
}

/** The whole report, as printed with `--json`. */
export interface BenchReport {
  runtime: string;
  durability: Durability;
  quick: boolean;
  /** Each number is the median of this many runs, each on a fresh file. */
  runs: number;
  machine: { cores: number; model: string; os: string };
  results: BenchResult[];
}

const QUEUE = "bench";

interface Counts {
  push: number;
  pushAll: number;
  drain: number;
  latency: number;
}

/** Command-line options. */
export interface BenchOptions {
  durability: Durability;
  quick: boolean;
  json: boolean;
  runs: number;
  /** Internal: run as the pushing child process of scenario 5 on this database file. */
  pusher?: { path: string; count: number };
}

function parse(): BenchOptions {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      durability: { type: "string", default: "normal" },
      quick: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      runs: { type: "string" },
      pusher: { type: "string" },
      count: { type: "string" },
    },
    strict: true,
    allowPositionals: false,
  });
  const durability = values.durability;
  if (durability !== "normal" && durability !== "full") {
    throw new TypeError(
      `--durability must be "normal" or "full": current value is ${JSON.stringify(durability)}`,
    );
  }
  const quick = values.quick === true;
  // Full runs report the median of 3 by default: the machine is often shared.
  const runs = values.runs === undefined ? (quick ? 1 : 3) : Number(values.runs);
  if (!Number.isSafeInteger(runs) || runs < 1) {
    throw new RangeError(
      `--runs must be an integer >= 1: current value is ${JSON.stringify(values.runs)}`,
    );
  }
  const options: BenchOptions = { durability, quick, json: values.json === true, runs };
  if (values.pusher !== undefined) {
    const count = Number(values.count);
    if (!Number.isSafeInteger(count) || count < 1) {
      throw new RangeError(
        `--count must be an integer >= 1: current value is ${JSON.stringify(values.count)}`,
      );
    }
    options.pusher = { path: values.pusher, count };
  }
  return options;
}

function runtimeName(): string {
  const versions = process.versions as Record<string, string | undefined>;
  if (versions.bun) return `Bun ${versions.bun}`;
  if (versions.deno) return `Deno ${versions.deno}`;
  return `Node ${process.version}`;
}

function progress(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** A migrated database file in a fresh temp dir; disposing closes it and removes the dir. */
async function freshDatabase(
  durability: Durability,
): Promise<{ db: Database; [Symbol.asyncDispose](): Promise<void> }> {
  const dir = await mkdtemp(join(os.tmpdir(), "apalis_bench_"));
  const db = openDatabase(join(dir, "queue.db"), { durability });
  SqliteStorage.setup(db);
  return {
    db,
    async [Symbol.asyncDispose]() {
      db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function rate(n: number, ms: number): number {
  return Math.round(n / (ms / 1000));
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new Error("no samples");
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function benchPush(durability: Durability, n: number): Promise<number> {
  await using temp = await freshDatabase(durability);
  const storage = new SqliteStorage<number>(temp.db, QUEUE);
  const start = performance.now();
  for (let i = 0; i < n; i++) await storage.push(i);
  const elapsed = performance.now() - start;
  await assertCount(storage, "pending", n);
  return rate(n, elapsed);
}

async function benchPushAll(durability: Durability, n: number): Promise<number> {
  await using temp = await freshDatabase(durability);
  const storage = new SqliteStorage<number>(temp.db, QUEUE);
  const tasks = Array.from({ length: n }, (_, i) => new Task(i));
  const start = performance.now();
  const ids = await storage.pushAll(tasks);
  const elapsed = performance.now() - start;
  if (ids.length !== n) throw new Error(`pushAll returned ${ids.length} ids, expected ${n}`);
  await assertCount(storage, "pending", n);
  return rate(n, elapsed);
}

async function benchDrain(durability: Durability, n: number, concurrency: number): Promise<number> {
  await using temp = await freshDatabase(durability);
  const storage = new SqliteStorage<number>(temp.db, QUEUE);
  await storage.pushAll(Array.from({ length: n }, (_, i) => new Task(i)));
  let handled = 0;
  const errors: unknown[] = [];
  const worker = new WorkerBuilder(`bench-drain-${concurrency}`)
    .backend(storage)
    .concurrency(concurrency)
    .handleSignals(false)
    .onEvent((_ctx, event) => {
      if (event.type === "error") errors.push(event.error);
    })
    .build((_n, ctx) => {
      if (++handled === n) ctx.worker.stop();
    });
  const start = performance.now();
  await worker.run();
  const elapsed = performance.now() - start;
  if (errors.length > 0) {
    throw new Error(`drain at concurrency ${concurrency}: ${errors.length} worker errors`, {
      cause: errors[0],
    });
  }
  await assertCount(storage, "done", n);
  return rate(n, elapsed);
}

async function benchLatency(
  durability: Durability,
  n: number,
): Promise<{ p50: number; p99: number }> {
  await using temp = await freshDatabase(durability);
  const storage = new SqliteStorage<{ pushedAt: number }>(temp.db, QUEUE);
  const latencies: number[] = [];
  let resolveIdle!: () => void;
  const idle = new Promise<void>((resolve) => resolveIdle = resolve);
  const worker = new WorkerBuilder("bench-latency")
    .backend(storage)
    .concurrency(1)
    .handleSignals(false)
    .onEvent((_ctx, event) => {
      if (event.type === "idle") resolveIdle();
    })
    .build((args, ctx) => {
      latencies.push(performance.now() - args.pushedAt);
      if (latencies.length === n) ctx.worker.stop();
    });
  const running = worker.run();
  try {
    await Promise.race([idle, running]);
    for (let i = 0; i < n; i++) {
      await storage.push({ pushedAt: performance.now() });
      await sleep(10);
    }
  } catch (error) {
    await worker.stop();
    throw error;
  }
  await running;
  await assertCount(storage, "done", n);
  const sorted = [...latencies].sort((a, b) => a - b);
  return { p50: round2(percentile(sorted, 50)), p99: round2(percentile(sorted, 99)) };
}

/** The command line that runs this file as a pusher under the current runtime. */
function pusherCommand(path: string, n: number, durability: Durability): [string, string[]] {
  const script = fileURLToPath(import.meta.url);
  const flags = ["--pusher", path, "--count", String(n), "--durability", durability];
  const isDeno = "Deno" in globalThis;
  const isBun = (process.versions as Record<string, string | undefined>).bun !== undefined;
  if (!isDeno && !isBun) throw new Error("the cross-process scenario runs under Deno or Bun");
  return [process.execPath, [...(isDeno ? ["run", "-A"] : ["run"]), script, ...flags]];
}

/** Epoch milliseconds with sub-millisecond resolution, comparable across processes. */
function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The child's side of scenario 5: pushes `count` stamped tasks 10 ms apart, then exits. */
async function runPusher(path: string, count: number, durability: Durability): Promise<void> {
  const db = openDatabase(path, { durability });
  try {
    const storage = new SqliteStorage<{ pushedAt: number }>(db, QUEUE);
    for (let i = 0; i < count; i++) {
      await storage.push({ pushedAt: epochMs() });
      await sleep(10);
    }
  } finally {
    db.close();
  }
}

/** Waits for a child process to exit; rejects unless it exited with code 0. */
function exited(child: ReturnType<typeof spawn>, stderr: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`the pushing process exited with ${code ?? signal}: ${stderr()}`));
    });
  });
}

async function benchLatencyOtherProcess(
  durability: Durability,
  n: number,
): Promise<{ p50: number; p99: number }> {
  const dir = await mkdtemp(join(os.tmpdir(), "apalis_bench_"));
  const path = join(dir, "queue.db");
  const db = openDatabase(path, { durability });
  try {
    SqliteStorage.setup(db);
    const storage = new SqliteStorage<{ pushedAt: number }>(db, QUEUE);
    const latencies: number[] = [];
    let resolveIdle!: () => void;
    const idle = new Promise<void>((resolve) => resolveIdle = resolve);
    let resolveAll!: () => void;
    const all = new Promise<void>((resolve) => resolveAll = resolve);
    const worker = new WorkerBuilder("bench-latency-ipc")
      .backend(storage)
      .concurrency(1)
      .handleSignals(false)
      .onEvent((_ctx, event) => {
        if (event.type === "idle") resolveIdle();
      })
      .build((args) => {
        latencies.push(epochMs() - args.pushedAt);
        if (latencies.length === n) resolveAll();
      });
    const running = worker.run();
    try {
      await Promise.race([idle, running]);
      const [command, args] = pusherCommand(path, n, durability);
      const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr?.setEncoding("utf8").on("data", (chunk: string) => stderr += chunk);
      await exited(child, () => stderr);
      // Every task was committed: all must start soon (a missed wake-up would still be polled).
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`only ${latencies.length} of ${n} tasks started within 30 s`)),
          30_000,
        );
      });
      try {
        await Promise.race([all, timeout, running]);
      } finally {
        clearTimeout(timer);
      }
    } finally {
      await worker.stop();
    }
    await running;
    await assertCount(storage, "done", n);
    const sorted = [...latencies].sort((a, b) => a - b);
    return { p50: round2(percentile(sorted, 50)), p99: round2(percentile(sorted, 99)) };
  } finally {
    db.close();
    await rm(dir, { recursive: true, force: true });
  }
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

async function assertCount(
  storage: SqliteStorage<unknown>,
  status: "pending" | "done",
  n: number,
): Promise<void> {
  const stats = await storage.stats(QUEUE);
  if (stats[status] !== n || stats.total !== n) {
    throw new Error(
      `expected ${n} ${status} tasks, found ${JSON.stringify(stats)}`,
    );
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Runs `measure` `runs` times (each on its own fresh file) and returns the median. */
async function medianOf(runs: number, measure: () => Promise<number>): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < runs; i++) values.push(await measure());
  if (runs > 1) progress(`    runs: ${values.join(", ")}`);
  return median(values);
}

/** Runs every scenario and returns the report. */
export async function runBench(
  options: Pick<BenchOptions, "durability" | "quick" | "runs">,
): Promise<BenchReport> {
  const { durability, quick, runs } = options;
  const scale = quick ? 10 : 1;
  const counts: Counts = {
    push: 10_000 / scale,
    pushAll: 50_000 / scale,
    drain: 20_000 / scale,
    latency: 200 / scale,
  };
  const results: BenchResult[] = [];
  const add = (result: BenchResult) => {
    results.push(result);
    progress(`  ${result.scenario}: ${result.value} ${result.unit}`);
  };

  // Warm the JIT and the statement paths on throwaway files (always "normal": the point is the
  // code, not the disk); not reported.
  progress(`warm-up (${runtimeName()})`);
  await benchPush("normal", counts.push / 5);
  await benchPushAll("normal", counts.pushAll / 5);
  await benchDrain("normal", counts.drain / 10, 1);
  await benchDrain("normal", counts.drain / 10, 16);
  progress(`measuring (durability ${durability}, median of ${runs} run${runs > 1 ? "s" : ""})`);

  add({
    key: "push",
    scenario: `push one by one (${counts.push.toLocaleString("en")} awaited)`,
    value: await medianOf(runs, () => benchPush(durability, counts.push)),
    unit: "tasks/s",
  });
  add({
    key: "pushAll",
    scenario: `pushAll (${counts.pushAll.toLocaleString("en")} tasks, one call)`,
    value: await medianOf(runs, () => benchPushAll(durability, counts.pushAll)),
    unit: "tasks/s",
  });
  for (const concurrency of [1, 16]) {
    add({
      key: `drain_c${concurrency}`,
      scenario: `drain ${
        counts.drain.toLocaleString("en")
      } no-op tasks, concurrency ${concurrency}`,
      value: await medianOf(runs, () => benchDrain(durability, counts.drain, concurrency)),
      unit: "tasks/s",
    });
  }
  const latencies: { p50: number; p99: number }[] = [];
  for (let i = 0; i < runs; i++) latencies.push(await benchLatency(durability, counts.latency));
  const latencyLabel = `enqueue→start latency, idle worker (${counts.latency} pushes 10 ms apart)`;
  add({
    key: "latency_p50",
    scenario: `${latencyLabel} p50`,
    value: round2(median(latencies.map((l) => l.p50))),
    unit: "ms",
  });
  add({
    key: "latency_p99",
    scenario: `${latencyLabel} p99`,
    value: round2(median(latencies.map((l) => l.p99))),
    unit: "ms",
  });
  const ipc: { p50: number; p99: number }[] = [];
  for (let i = 0; i < runs; i++) {
    ipc.push(await benchLatencyOtherProcess(durability, counts.latency));
  }
  const ipcLabel =
    `enqueue→start latency, pushed by another process (${counts.latency} pushes 10 ms apart)`;
  add({
    key: "latency_process_p50",
    scenario: `${ipcLabel} p50`,
    value: round2(median(ipc.map((l) => l.p50))),
    unit: "ms",
  });
  add({
    key: "latency_process_p99",
    scenario: `${ipcLabel} p99`,
    value: round2(median(ipc.map((l) => l.p99))),
    unit: "ms",
  });

  const cpus = os.cpus();
  return {
    runtime: runtimeName(),
    durability,
    quick,
    runs,
    machine: {
      cores: cpus.length,
      model: cpus[0]?.model ?? "unknown",
      os: `${os.platform()} ${os.release()}`,
    },
    results,
  };
}

/** Formats the report as a markdown table. */
export function toMarkdown(report: BenchReport): string {
  const lines = [
    `Machine: ${report.machine.cores} cores, ${report.machine.model} (${report.machine.os})` +
    (report.runs > 1 ? ` — median of ${report.runs} runs` : "") +
    (report.quick ? " — quick run (counts / 10)" : ""),
    "",
    "| scenario | result | unit | runtime | durability |",
    "| --- | ---: | --- | --- | --- |",
  ];
  for (const r of report.results) {
    const value = r.unit === "ms" ? r.value.toFixed(2) : r.value.toLocaleString("en");
    lines.push(
      `| ${r.scenario} | ${value} | ${r.unit} | ${report.runtime} | ${report.durability} |`,
    );
  }
  return lines.join("\n");
}

if (import.meta.main) {
  let args: ReturnType<typeof parse>;
  try {
    args = parse();
  } catch (error) {
    progress(`bench: ${error instanceof Error ? error.message : String(error)}`);
    progress("usage: bench.ts [--durability normal|full] [--quick] [--json] [--runs n]");
    process.exit(2);
  }
  if (args.pusher) {
    await runPusher(args.pusher.path, args.pusher.count, args.durability);
    process.exit(0);
  }
  const report = await runBench(args);
  console.log(args.json ? JSON.stringify(report, null, 2) : toMarkdown(report));
}
