import {
  type DurationHistogram,
  type MetricsSnapshot,
  type QueueMetrics,
  TASK_STATUSES,
} from "../../mod.ts";
/**
 * The Prometheus text exposition format (version 0.0.4): metric families with their HELP and
 * TYPE lines, label values escaped.
 *
 * @module
 */

/** The `Content-Type` of the text format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/**
 * A label value as the format writes it between double quotes: backslash, double quote and
 * line feed escaped (`\\`, `\"`, `\n`); everything else as is (UTF-8).
 *
 * @example Usage
 * ```ts
 * import { escapeLabelValue } from "./prometheus.ts";
 *
 * if (escapeLabelValue('a"b\\c\nd') !== 'a\\"b\\\\c\\nd') throw new Error("unexpected");
 * ```
 */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => c === "\n" ? "\\n" : `\\${c}`);
}

/** HELP text: backslash and line feed escaped. */
function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => c === "\n" ? "\\n" : "\\\\");
}

/** A number as the format reads it (Go's ParseFloat): `+Inf` for infinity. */
function number(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  if (Number.isNaN(value)) return "NaN";
  return String(value);
}

type Labels = readonly (readonly [string, string])[];

function labels(pairs: Labels): string {
  if (pairs.length === 0) return "";
  return `{${pairs.map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(",")}}`;
}

/** Writes families one after the other. */
class Exposition {
  readonly #lines: string[] = [];

  family(name: string, type: "gauge" | "counter" | "histogram", help: string): void {
    this.#lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
  }

  sample(name: string, pairs: Labels, value: number): void {
    this.#lines.push(`${name}${labels(pairs)} ${number(value)}`);
  }

  histogram(name: string, pairs: Labels, data: DurationHistogram): void {
    data.boundsMs.forEach((bound, i) => {
      this.sample(`${name}_bucket`, [...pairs, ["le", number(bound / 1000)]], data.buckets[i]!);
    });
    this.sample(`${name}_bucket`, [...pairs, ["le", "+Inf"]], data.count);
    this.sample(`${name}_sum`, pairs, data.sumMs / 1000);
    this.sample(`${name}_count`, pairs, data.count);
  }

  text(): string {
    return this.#lines.length === 0 ? "" : `${this.#lines.join("\n")}\n`;
  }
}

interface Family {
  name: string;
  type: "gauge" | "counter" | "histogram";
  help: string;
  write(out: Exposition, name: string, queue: QueueMetrics, pairs: Labels): void;
}

const FAMILIES: readonly Family[] = [
  {
    name: "apalis_tasks",
    type: "gauge",
    help: "Tasks in each state, per queue.",
    write(out, name, queue, pairs) {
      for (const state of TASK_STATUSES) {
        out.sample(name, [...pairs, ["state", state]], queue.counts[state]);
      }
    },
  },
  {
    name: "apalis_tasks_started_total",
    type: "counter",
    help:
      "Attempts started, since the database was set up (counted at the worker's next write after the start).",
    write: (out, name, queue, pairs) => out.sample(name, pairs, queue.started),
  },
  {
    name: "apalis_tasks_succeeded_total",
    type: "counter",
    help: "Tasks that ended done, since the database was set up (kept across vacuums).",
    write: (out, name, queue, pairs) => out.sample(name, pairs, queue.outcomes.done),
  },
  {
    name: "apalis_tasks_failed_total",
    type: "counter",
    help:
      "Attempts that failed and were scheduled for a retry (a failed last attempt counts as killed), since the database was set up.",
    write: (out, name, queue, pairs) => out.sample(name, pairs, queue.outcomes.failed),
  },
  {
    name: "apalis_tasks_killed_total",
    type: "counter",
    help:
      "Tasks that ended killed (out of attempts, killed by hand, undecodable), since the database was set up.",
    write: (out, name, queue, pairs) => out.sample(name, pairs, queue.outcomes.killed),
  },
  {
    name: "apalis_task_run_seconds",
    type: "histogram",
    help:
      "Run time (claim to end) of the queue's newest done tasks (a sample, not a running count: use histogram_quantile() on it without rate()).",
    write: (out, name, queue, pairs) => out.histogram(name, pairs, queue.runTime),
  },
  {
    name: "apalis_task_wait_seconds",
    type: "histogram",
    help:
      "Wait time (due to claim) of the queue's newest done tasks (a sample, not a running count: use histogram_quantile() on it without rate()).",
    write: (out, name, queue, pairs) => out.histogram(name, pairs, queue.waitTime),
  },
  {
    name: "apalis_workers_alive",
    type: "gauge",
    help: "Workers of the queue that are alive (heartbeat recent, not stopped).",
    write: (out, name, queue, pairs) => out.sample(name, pairs, queue.aliveWorkers),
  },
  {
    name: "apalis_oldest_pending_task_age_seconds",
    type: "gauge",
    help:
      "How long the queue's oldest due waiting task (pending, or failed awaiting its retry) has been due; 0 when none waits.",
    write: (out, name, queue, pairs) => out.sample(name, pairs, queue.oldestDueAgeMs / 1000),
  },
  {
    name: "apalis_queue_paused",
    type: "gauge",
    help: "1 when the queue is paused, else 0.",
    write: (out, name, queue, pairs) => out.sample(name, pairs, queue.paused ? 1 : 0),
  },
];

/**
 * A metrics snapshot (`Admin.metrics()`) in the Prometheus text format (version 0.0.4), as
 * `renderMetrics` gives it: every family with its HELP and TYPE lines, then one series
 * per queue (label `queue`). Families without a queue are left out. Use it to read the snapshot
 * once and both export it and look at it (as `apalis metrics` does), or to push it somewhere.
 *
 * @example Read once, print as Prometheus text
 * ```ts
 * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
 * import { formatMetrics } from "@apalis/sqlite/board";
 *
 * const db = openDatabase(":memory:");
 * SqliteStorage.setup(db);
 * await new SqliteStorage(db, "email").push({ to: "a@b.c" });
 * const snapshot = await SqliteStorage.admin(db).metrics();
 * const text = formatMetrics(snapshot);
 * if (!text.includes('apalis_tasks{queue="email",state="pending"} 1')) throw new Error("unexpected");
 * if (formatMetrics({ ...snapshot, queues: [] }) !== "") throw new Error("no queue, no text");
 * db.close();
 * ```
 */
export function formatMetrics(snapshot: MetricsSnapshot): string {
  const out = new Exposition();
  if (snapshot.queues.length === 0) return out.text();
  for (const family of FAMILIES) {
    out.family(family.name, family.type, family.help);
    for (const queue of snapshot.queues) {
      family.write(out, family.name, queue, [["queue", queue.queue]]);
    }
  }
  return out.text();
}
