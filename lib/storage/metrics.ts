/**
 * What the metrics endpoint reports, read through the backend: each queue's tasks by state,
 * workers alive, oldest due task, outcome counters that never decrease, and histograms of run
 * and wait times of its most recent done tasks.
 *
 * @module
 */
import type { Backend, DurationsRow, OutcomeTotalRow } from "../backend/types.ts";
import { emptyCounts, type QueueInfo, type StatusCounts } from "./records.ts";

/**
 * How many of each queue's newest `done` tasks the run and wait time histograms describe. Each
 * costs one index entry and one row read per scrape.
 */
export const METRICS_SAMPLE = 1000;

/**
 * The histograms' upper bounds, ms: 5 ms to 1 hour, roughly ×2.5 apart (the same for run and
 * wait times; a last `+Inf` bucket holds every task).
 */
export const DURATION_BOUNDS_MS: readonly number[] = [
  5,
  10,
  25,
  50,
  100,
  250,
  500,
  1_000,
  2_500,
  5_000,
  10_000,
  30_000,
  60_000,
  300_000,
  900_000,
  3_600_000,
];

/** Times of a sample of tasks, counted into buckets (see {@linkcode QueueMetrics}). */
export interface DurationHistogram {
  /** Upper bounds of the buckets, ms, ascending. */
  boundsMs: readonly number[];
  /** How many tasks took at most each bound (cumulative, as Prometheus buckets are). */
  buckets: number[];
  /** Tasks in the sample. */
  count: number;
  /** Their times added up, ms. */
  sumMs: number;
}

/** One queue's metrics, as `Admin.metrics()` reads them. */
export interface QueueMetrics {
  /** The queue's name (the `queue` label of its series). */
  queue: string;
  /** Tasks in each state now. */
  counts: StatusCounts;
  /** Whether the queue is paused. */
  paused: boolean;
  /** Workers of the queue that are alive. */
  aliveWorkers: number;
  /** How long the oldest due waiting task (pending, or failed awaiting a retry) has been due, ms; 0 when none waits. */
  oldestDueAgeMs: number;
  /**
   * Attempts started since the database was set up (counted by the worker that started them, at
   * its next write: a worker killed in between loses its last few). Never decreases.
   */
  started: number;
  /**
   * Outcomes since the database was set up: tasks that ended `done`, failed attempts (retried
   * later), tasks that ended `killed`. These never decrease, vacuum or not.
   */
  outcomes: { done: number; failed: number; killed: number };
  /** Run times (claim to end) of the queue's newest done tasks (at most `METRICS_SAMPLE`). */
  runTime: DurationHistogram;
  /** Wait times (due to claim) of the same tasks. */
  waitTime: DurationHistogram;
}

/** Every queue's metrics at one time. */
export interface MetricsSnapshot {
  /** When they were read (the database's time for PostgreSQL without a clock), epoch ms. */
  at: number;
  /** How many newest done tasks per queue the histograms describe, at most. */
  sample: number;
  /** By queue name. */
  queues: QueueMetrics[];
}

/**
 * Adds outcome totals and histograms to the queues `listQueues` read, and the queues that only
 * have outcomes left (their tasks were vacuumed: a counter must not disappear).
 */
export async function readMetrics(
  backend: Backend,
  queues: readonly QueueInfo[],
  now: number,
): Promise<MetricsSnapshot> {
  const byName = new Map<string, QueueMetrics>();
  const entry = (queue: string): QueueMetrics => {
    let metrics = byName.get(queue);
    if (!metrics) {
      metrics = {
        queue,
        counts: emptyCounts(),
        paused: false,
        aliveWorkers: 0,
        oldestDueAgeMs: 0,
        started: 0,
        outcomes: { done: 0, failed: 0, killed: 0 },
        runTime: emptyHistogram(),
        waitTime: emptyHistogram(),
      };
      byName.set(queue, metrics);
    }
    return metrics;
  };
  for (const info of queues) {
    const metrics = entry(info.name);
    metrics.counts = info.counts;
    metrics.paused = info.paused;
    metrics.aliveWorkers = info.aliveWorkers;
    metrics.oldestDueAgeMs = info.oldestDueAt === null ? 0 : Math.max(0, now - info.oldestDueAt);
  }
  for (const { queue, started, done, failed, killed } of await outcomeTotals(backend)) {
    const metrics = entry(queue);
    metrics.started = Number(started);
    metrics.outcomes = { done: Number(done), failed: Number(failed), killed: Number(killed) };
  }
  const withDone = queues.filter((info) => info.counts.done > 0).map((info) => info.name);
  for (const row of await backend.taskDurations(withDone, METRICS_SAMPLE, DURATION_BOUNDS_MS)) {
    const metrics = entry(row.queue);
    metrics.runTime = histogram(row, "run");
    metrics.waitTime = histogram(row, "wait");
  }
  const sorted = [...byName.values()].sort((a, b) =>
    a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0
  );
  return { at: now, sample: METRICS_SAMPLE, queues: sorted };
}

/**
 * The outcome totals; on a database whose schema predates them (read without upgrading it: CLI,
 * board), the per-minute counts it still has, which a vacuum there lowers.
 */
async function outcomeTotals(backend: Backend): Promise<OutcomeTotalRow[]> {
  try {
    return await backend.outcomeTotals();
  } catch (error) {
    if (!isMissingTotalsTable(error)) throw error;
  }
  const totals = new Map<string, OutcomeTotalRow>();
  for (const row of await backend.throughputSince(0)) {
    const total = totals.get(row.queue) ??
      { queue: row.queue, started: 0, done: 0, failed: 0, killed: 0 };
    // Such a schema has no started count either: every ended attempt had started.
    total.started += Number(row.done) + Number(row.failed) + Number(row.killed);
    total.done += Number(row.done);
    total.failed += Number(row.failed);
    total.killed += Number(row.killed);
    totals.set(row.queue, total);
  }
  return [...totals.values()];
}

function isMissingTotalsTable(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (/apalis_outcome_totals/.test(e.message) && /no such table|does not exist/.test(e.message)) {
      return true;
    }
  }
  return false;
}

function emptyHistogram(): DurationHistogram {
  return {
    boundsMs: DURATION_BOUNDS_MS,
    buckets: DURATION_BOUNDS_MS.map(() => 0),
    count: 0,
    sumMs: 0,
  };
}

function histogram(row: DurationsRow, kind: "run" | "wait"): DurationHistogram {
  return {
    boundsMs: DURATION_BOUNDS_MS,
    buckets: (kind === "run" ? row.run_buckets : row.wait_buckets).map(Number),
    count: Number(row.n),
    sumMs: Number(kind === "run" ? row.run_sum : row.wait_sum),
  };
}
