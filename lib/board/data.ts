import {
  type Admin,
  type ListRunsOptions,
  type QueueFlow,
  type QueueInfo,
  type RunRecord,
  type RunStatus,
  type RunSummary,
  type StatusCounts,
  TASK_STATUSES,
  type TaskRecord,
  type TaskStatus,
  type WorkerInfo,
} from "../../mod.ts";
import type { CostlyReads } from "./costly_reads.ts";

/** Outcomes in one minute. */
export interface MinuteCounts {
  /** Epoch ms at the start of the minute. */
  minute: number;
  done: number;
  failed: number;
  killed: number;
}

/** One queue on the overview. */
export interface QueueOverview extends QueueInfo {
  /** Age of the oldest task that is due and waiting (ms), or null. */
  oldestPendingAgeMs: number | null;
  /** Workers alive, and dead (gone without stopping); stopped workers are in neither. */
  workers: { alive: number; dead: number };
  /** The last 60 minutes, oldest first, one entry per minute (zeros included). */
  throughput: MinuteCounts[];
}

/** `GET /api/overview`. */
export interface Overview {
  generatedAt: number;
  /**
   * When the queues' counts and oldest pending tasks were read: earlier than `generatedAt` when
   * reading them was expensive and a recent read was reused (see `CostlyReads`).
   */
  countedAt: number;
  queues: QueueOverview[];
  totals: StatusCounts;
  workers: { alive: number; dead: number };
  /** Every queue's outcomes summed, the last 60 minutes. */
  throughput: MinuteCounts[];
}

const MINUTES = 60;

/** Gathers the overview: counts, throughput, oldest pending age and workers per queue. */
export async function overview(
  storage: Admin,
  now: number,
  reads: CostlyReads,
): Promise<Overview> {
  const [{ value: queues, at: countedAt }, workers, points] = await Promise.all([
    reads.get("queues", () => storage.listQueues()),
    storage.listWorkers(),
    storage.throughput({ minutes: MINUTES }),
  ]);
  const first = now - (now % 60_000) - (MINUTES - 1) * 60_000;
  const series = () =>
    Array.from({ length: MINUTES }, (_, i) => ({
      minute: first + i * 60_000,
      done: 0,
      failed: 0,
      killed: 0,
    }));
  const total = series();
  const perQueue = new Map<string, MinuteCounts[]>();
  for (const point of points) {
    const i = (point.minute - first) / 60_000;
    if (i < 0 || i >= MINUTES) continue;
    let list = perQueue.get(point.queue);
    if (!list) perQueue.set(point.queue, list = series());
    for (const target of [list[i]!, total[i]!]) {
      target.done += point.done;
      target.failed += point.failed;
      target.killed += point.killed;
    }
  }
  const totals = emptyCounts();
  const allWorkers = { alive: 0, dead: 0 };
  // Dead: gone without stopping (crashed, killed, lost); a worker that stopped is neither.
  const isDead = (worker: WorkerInfo) => !worker.alive && worker.stoppedAt === null;
  for (const worker of workers) {
    if (worker.alive) allWorkers.alive++;
    else if (isDead(worker)) allWorkers.dead++;
  }
  return {
    generatedAt: now,
    countedAt,
    queues: queues.map((queue) => {
      for (const status of TASK_STATUSES) totals[status] += queue.counts[status];
      totals.total += queue.counts.total;
      const mine = workers.filter((worker) => worker.queue === queue.name);
      return {
        ...queue,
        oldestPendingAgeMs: queue.oldestDueAt === null
          ? null
          : Math.max(0, now - queue.oldestDueAt),
        workers: {
          alive: mine.filter((worker) => worker.alive).length,
          dead: mine.filter(isDead).length,
        },
        throughput: perQueue.get(queue.name) ?? series(),
      };
    }),
    totals,
    workers: allWorkers,
    throughput: total,
  };
}

/** `GET /api/queues/:queue/tasks`. */
export interface QueuePage {
  queue: string;
  status: TaskStatus | null;
  page: number;
  pageSize: number;
  counts: StatusCounts;
  /** When `counts` were read (see {@linkcode Overview.countedAt}). */
  countedAt: number;
  /**
   * The tasks, with arguments and results over {@linkcode LIST_PREVIEW_BYTES} left out and
   * described in `cut` (size, first bytes as text): `GET /api/tasks/:id` gives them whole.
   */
  tasks: TaskRecord[];
  /** Whether an older page exists. */
  more: boolean;
  /** Whether the queue is paused, and its limits. */
  flow: QueueFlow;
}

/**
 * How much of each task's arguments and result a listing reads: longer ones are previews (see
 * `TaskRecord.cut`), so a page of 5 MB payloads stays small. A task's own page reads it whole.
 */
export const LIST_PREVIEW_BYTES = 1024;

/** One page of a queue's tasks, newest first, payloads cut to {@linkcode LIST_PREVIEW_BYTES}. */
export async function queuePage(
  storage: Admin,
  reads: CostlyReads,
  asked: { queue: string; status: TaskStatus | null; page: number; pageSize: number },
): Promise<QueuePage> {
  const { queue, status, page, pageSize } = asked;
  const previewBytes = LIST_PREVIEW_BYTES;
  const [tasks, counts, flow] = await Promise.all([
    storage.listTasks({ queue, page, pageSize, previewBytes, ...(status ? { status } : {}) }),
    reads.get(`stats:${queue}`, () => storage.stats(queue)),
    storage.queueFlow(queue),
  ]);
  // Reused counts may lag the listing: a full page may then have a next one too.
  const more = page * pageSize < (status ? counts.value[status] : counts.value.total) ||
    (counts.reused && tasks.length === pageSize);
  return { ...asked, counts: counts.value, countedAt: counts.at, tasks, more, flow };
}

/** `GET /api/workers`. */
export function workers(storage: Admin): Promise<WorkerInfo[]> {
  return storage.listWorkers();
}

/** `GET /api/runs`. */
export interface RunsPage {
  queue: string | null;
  status: RunStatus | null;
  page: number;
  pageSize: number;
  runs: RunSummary[];
  more: boolean;
}

/** One page of workflow runs, newest first. */
export async function runsPage(
  storage: Admin,
  filter: { queue: string | null; status: RunStatus | null; page: number; pageSize: number },
): Promise<RunsPage> {
  const options: ListRunsOptions = { page: filter.page, pageSize: filter.pageSize };
  if (filter.queue) options.queue = filter.queue;
  if (filter.status) options.status = filter.status;
  const runs = await storage.listRuns(options);
  // A full page may have a next one (at worst, an empty one).
  return { ...filter, runs, more: runs.length === filter.pageSize };
}

/** Where a node of a run's graph stands, from the tasks that ran it. */
export type NodeState = "waiting" | "pending" | "running" | "done" | "failed";

/** `GET /api/runs/:id`: the run, with the state of each node of its graph. */
export interface RunView extends RunRecord {
  nodeStates: Record<string, NodeState>;
}

/** A run and the state of each node of its graph, or undefined. */
export async function runView(storage: Admin, id: string): Promise<RunView | undefined> {
  const run = await storage.workflowRun(id);
  if (!run) return undefined;
  const nodeStates: Record<string, NodeState> = {};
  for (const node of run.graph?.nodes ?? []) nodeStates[node.key] = "waiting";
  const byNode = new Map<string, TaskStatus[]>();
  for (const step of run.steps) {
    if (step.node === null) continue;
    byNode.set(step.node, [...(byNode.get(step.node) ?? []), step.status]);
  }
  for (const [node, statuses] of byNode) nodeStates[node] = nodeState(statuses);
  return { ...run, nodeStates };
}

function nodeState(statuses: TaskStatus[]): NodeState {
  if (statuses.includes("killed")) return "failed";
  if (statuses.some((s) => s === "running" || s === "queued")) return "running";
  if (statuses.some((s) => s === "pending" || s === "failed")) return "pending";
  return "done";
}

/** Zero counts, to add queues' counts to. */
function emptyCounts(): StatusCounts {
  return { pending: 0, queued: 0, running: 0, done: 0, failed: 0, killed: 0, total: 0 };
}
