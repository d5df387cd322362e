/**
 * Helpers shared by the benchmark's files: the queue name, rates and statistics, fresh database
 * files (SQLite), count checks, a cross-process clock and progress output.
 *
 * @module
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import process from "node:process";
import {
  type Database,
  type Durability,
  openDatabase,
  SqliteStorage,
  type Storage,
} from "../mod.ts";
import { ulid } from "../lib/storage/ulid.ts";

/** The queue every scenario pushes to and drains. */
export const QUEUE = "bench";

/** How many tasks (or rows) each scenario handles. */
export interface Counts {
  push: number;
  pushAll: number;
  drainC1: number;
  drainC16: number;
  drainProcs: number;
  drainProcsWork: number;
  latency: number;
  /** What each child process of the multi-process drains drains first, on its own. */
  childWarmUp: number;
  /** The drain under a rate limit of 1,000 starts/s (4 windows' worth; 2 with `--quick`). */
  rateLimited: number;
}

/** The counts of a full run, or of a quick one (divided by 10). */
export function benchCounts(quick: boolean): Counts {
  const scale = quick ? 10 : 1;
  return {
    push: 10_000 / scale,
    pushAll: 50_000 / scale,
    drainC1: 20_000 / scale,
    drainC16: 50_000 / scale,
    drainProcs: 50_000 / scale,
    drainProcsWork: 20_000 / scale,
    latency: 200 / scale,
    childWarmUp: 20_000 / scale,
    rateLimited: quick ? 2_000 : 4_000,
  };
}

/** How many tasks an application passes to one `pushAll` call, typically. */
export const PUSH_BATCH = 1000;

/** The work of each task in the multi-process drain of tasks that work (see hashingHandler). */
export const WORK_KB = 64;

/** A task's arguments as users push them: a small object (about 35 bytes of JSON). */
export interface Email {
  n: number;
  to: string;
}

/** The `i`th benchmark payload. */
export function email(i: number): Email {
  return { n: i, to: "user@example.com" };
}

/**
 * `n` rows for a raw ceiling's table, made before its clock starts: ids (ULIDs, as the queue
 * makes them) and payloads (the benchmark's, as JSON).
 */
export function payloadRows(n: number): [string, Uint8Array][] {
  const encoder = new TextEncoder();
  const now = Date.now();
  return Array.from({ length: n }, (_, i) => [
    ulid(now),
    encoder.encode(JSON.stringify(email(i))),
  ]);
}

/** Tasks (or rows) per second: `n` in `ms` milliseconds, rounded. */
export function rate(n: number, ms: number): number {
  return Math.round(n / (ms / 1000));
}

/** The `p`-th percentile (nearest rank) of ascending `sorted` samples. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new Error("Cannot take a percentile: there are no samples");
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

/** The median of `values` (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error("Cannot take a median: there are no values");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** `x` rounded to 2 decimals. */
export function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> =>
  new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Epoch milliseconds with sub-millisecond resolution, comparable across processes. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Writes a progress line to stderr (stdout carries the report). */
export function progress(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** The runtime and its version, e.g. `Deno 2.9.6`. */
export function runtimeName(): string {
  const versions = process.versions as Record<string, string | undefined>;
  if (versions.bun) return `Bun ${versions.bun}`;
  if (versions.deno) return `Deno ${versions.deno}`;
  return `Node ${process.version}`;
}

/** A temp dir for one database file; disposing removes the dir and everything in it. */
export async function tempDir(): Promise<{ path: string; [Symbol.asyncDispose](): Promise<void> }> {
  const path = await mkdtemp(join(os.tmpdir(), "apalis_bench_"));
  return {
    path,
    async [Symbol.asyncDispose]() {
      await rm(path, { recursive: true, force: true });
    },
  };
}

/** A migrated database file in a fresh temp dir; disposing closes it and removes the dir. */
export async function freshDatabase(
  durability: Durability,
): Promise<{ db: Database; path: string; [Symbol.asyncDispose](): Promise<void> }> {
  const dir = await tempDir();
  const path = join(dir.path, "queue.db");
  let db: Database;
  try {
    db = openDatabase(path, { durability });
    SqliteStorage.setup(db);
  } catch (error) {
    await dir[Symbol.asyncDispose]();
    throw error;
  }
  return {
    db,
    path,
    async [Symbol.asyncDispose]() {
      db.close();
      await dir[Symbol.asyncDispose]();
    },
  };
}

/** Throws unless the queue holds exactly `n` tasks, all in `status`. */
export async function assertCount(
  storage: Storage<unknown>,
  status: "pending" | "done",
  n: number,
  queue: string = QUEUE,
): Promise<void> {
  const stats = await storage.stats(queue);
  if (stats[status] !== n || stats.total !== n) {
    throw new Error(`expected ${n} ${status} tasks, found ${JSON.stringify(stats)}`);
  }
}

/**
 * Runs every function of `measures` once per run, in turn (so that each sees the same
 * background load as its neighbours), `runs` times; returns the median of each.
 */
export async function medians(
  runs: number,
  measures: readonly (() => Promise<number>)[],
): Promise<number[]> {
  const values: number[][] = measures.map(() => []);
  for (let run = 0; run < runs; run++) {
    for (const [i, measure] of measures.entries()) values[i]!.push(await measure());
  }
  if (runs > 1) { for (const v of values) progress(`    runs: ${v.join(", ")}`); }
  return values.map(median);
}
