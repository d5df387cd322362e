/**
 * The benchmark's report: its rows (figures with the row they are compared to), and how each
 * kind of row is added, the same for both backends.
 *
 * @module
 */
import type { Durability } from "../mod.ts";
import { median, progress, round2 } from "./_shared.ts";
import type { Latency } from "./scenarios.ts";

/** The database a report measured. */
export type BackendName = "sqlite" | "postgres";

/** One measured number. */
export interface BenchResult {
  /** Stable machine-readable key. */
  key: string;
  /** Human-readable description. */
  scenario: string;
  value: number;
  unit: "tasks/s" | "ms" | "starts/s";
  /**
   * The key of the row this figure is compared to: its raw ceiling (SQLite's or PostgreSQL's,
   * as the report's backend), or for a drain by several processes the 1-process drain of the
   * same tasks (`drain_procs_1` for `drain_procs_4`).
   */
  ceiling?: string;
  /** `value` divided by the value of the `ceiling` row, to 2 decimals. */
  ratio?: number;
  /** The ratio the project aims for (at least). */
  target?: number;
  /** For a latency: the most the project aims for, in `unit`. */
  atMost?: number;
}

/** The whole report, as printed with `--json`. */
export interface BenchReport {
  backend: BackendName;
  /** PostgreSQL: the server's version and settings (the benchmark's own private cluster). */
  server?: string;
  runtime: string;
  /** SQLite: `--durability`. PostgreSQL: `full` (fsync and synchronous_commit on). */
  durability: Durability;
  quick: boolean;
  /** Each number is the median of this many runs, each on a fresh database. */
  runs: number;
  machine: { cores: number; model: string; os: string };
  results: BenchResult[];
}

/** `n` with thousands separators. */
export const fmt = (n: number): string => n.toLocaleString("en");

/** A figure or the row it is compared to, before it gets its unit. */
export type Row = Omit<BenchResult, "unit">;

/** The rows of a report as they are measured; each is also printed as progress. */
export class Results {
  readonly rows: BenchResult[] = [];
  readonly #targets: Readonly<Record<string, number>>;
  readonly #limits: Readonly<Record<string, number>>;

  /**
   * @param targets ratio targets (at least), by key
   * @param limits latency limits (at most, in ms), by key
   */
  constructor(
    targets: Readonly<Record<string, number>>,
    limits: Readonly<Record<string, number>> = {},
  ) {
    this.#targets = targets;
    this.#limits = limits;
  }

  /** Adds a row. */
  add(result: BenchResult): void {
    this.rows.push(result);
    progress(`  ${result.scenario}: ${result.value} ${result.unit}`);
  }

  /** Adds a figure and the row it is compared to (both already measured), figure first. */
  addPair(figure: Row, base: Row, withBase: boolean): void {
    const result: BenchResult = { ...figure, unit: "tasks/s", ceiling: base.key };
    result.ratio = round2(figure.value / base.value);
    const target = this.#targets[figure.key];
    if (target !== undefined) result.target = target;
    this.add(result);
    if (withBase) this.add({ ...base, unit: "tasks/s" });
  }

  /** Adds a drain by k = 1, … processes (`processes[0]` must be 1), each k > 1 compared to 1. */
  addProcesses(
    processes: readonly number[],
    values: readonly number[],
    key: (k: number) => string,
    scenario: (k: number) => string,
  ): void {
    const single = { key: key(1), scenario: scenario(1), value: values[0]! };
    this.add({ ...single, unit: "tasks/s" });
    processes.forEach((k, i) => {
      if (k === 1) return;
      this.addPair(
        { key: key(k), scenario: `${scenario(k)} (vs 1 process)`, value: values[i]! },
        single,
        false,
      );
    });
  }

  /** Adds the p50 and p99 rows of latency samples (the median of each over the runs). */
  addLatency(key: string, samples: readonly Latency[], label: string): void {
    for (const p of ["p50", "p99"] as const) {
      const result: BenchResult = {
        key: `${key}_${p}`,
        scenario: `enqueue→start latency, ${label} ${p}`,
        value: round2(median(samples.map((l) => l[p]))),
        unit: "ms",
      };
      const limit = this.#limits[result.key];
      if (limit !== undefined) result.atMost = limit;
      this.add(result);
    }
  }
}
