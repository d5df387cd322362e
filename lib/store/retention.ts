/**
 * Retention on SQLite: the statements behind `Backend.retentionStep` and `retentionRelease`.
 * A step reads a window of a queue's finished tasks (or finished runs) outside the write lock,
 * then deletes the expired ones it found in one short write transaction that first checks the
 * queue's retention lease (`apalis_leases`) and checks again what it read.
 *
 * @module
 */
import type { RetentionCursor, RetentionStep, RetentionStepResult } from "../backend/types.ts";
import type { Database } from "../sqlite/types.ts";
import { IS_FINISHED } from "./tasks.ts";

/** A time no task finished at or before: the cutoff of a status kept forever. */
const NEVER = Number.MIN_SAFE_INTEGER;
/** Entries a step reads per task it may delete, at most. */
const READ_FACTOR = 5;

/** The lease's name for a queue's retention. */
export function retentionLease(queue: string): string {
  return `retention:${queue}`;
}

/** The cutoffs of a step: tasks that finished at or before them have expired. */
export interface Cutoffs {
  done: number;
  killed: number;
}

/**
 * A task that may go on its own: in no run, or in a run whose row is gone. (A task of a run
 * goes with its run: see {@linkcode expiredRunsWhere}.)
 */
const ALONE = "(run_id IS NULL OR NOT EXISTS (SELECT 1 FROM apalis_runs WHERE id = t.run_id))";

/**
 * The finished runs whose tasks have all expired: the run by its own outcome's age, each of its
 * tasks by its own. Parameters: done cutoff, killed cutoff, done cutoff, killed cutoff.
 */
const EXPIRED_RUN = `r.status <> 'running'
  AND (r.status = 'done' AND r.done_at <= ? OR r.status = 'failed' AND r.done_at <= ?)
  AND NOT EXISTS (SELECT 1 FROM apalis_tasks AS t WHERE t.run_id = r.id
    AND NOT (t.status = 'done' AND t.done_at <= ? OR t.status = 'killed' AND t.done_at <= ?))`;

/** One step of a queue's retention pass (see `Backend.retentionStep`). */
export function retentionStep(db: Database, step: RetentionStep, now: number): RetentionStepResult {
  const cutoffs: Cutoffs = {
    done: step.doneMs === null ? NEVER : now - step.doneMs,
    killed: step.killedMs === null ? NEVER : now - step.killedMs,
  };
  const lease = retentionLease(step.queue);
  if (step.after === undefined && leasedElsewhere(db, lease, step.holder, now)) {
    return { outcome: "leased", tasks: 0, runs: 0, next: null };
  }
  const cursor = step.after ?? firstCursor(step);
  if (cursor === null) return { outcome: "none", tasks: 0, runs: 0, next: null };
  const found = cursor.phase === "runs"
    ? readExpiredRuns(db, step.queue, step.batchSize, cutoffs, cursor.after)
    : readExpiredTasks(db, step, cursor.phase, cutoffs, cursor.after);
  if (found.ids.length === 0) return { outcome: "none", tasks: 0, runs: 0, next: found.next };
  return db.transaction((): RetentionStepResult => {
    const from = Date.now();
    if (!takeLease(db, lease, step.holder, now, step.leaseMs)) {
      return { outcome: "leased", tasks: 0, runs: 0, next: null };
    }
    const deleted = cursor.phase === "runs"
      ? deleteRuns(db, found.ids, cutoffs)
      : { tasks: deleteTasks(db, step.queue, cursor.phase, cutoffs, found.ids), runs: 0 };
    return { outcome: "deleted", ...deleted, next: found.next, held: { from, to: Date.now() } };
  });
}

/**
 * Ends a pass: the lease becomes `holder`'s until `nextInMs` after `now`, if it is free, expired
 * or its own (see `Backend.retentionRelease`).
 */
export function retentionRelease(
  db: Database,
  release: { queue: string; holder: string; nextInMs: number },
  now: number,
): void {
  takeLease(db, retentionLease(release.queue), release.holder, now, release.nextInMs);
}

/** The phase a pass starts with: the first status kept for a while, else the runs. */
function firstCursor(step: RetentionStep): RetentionCursor | null {
  if (step.doneMs !== null) return { phase: "done", after: "" };
  if (step.killedMs !== null) return { phase: "killed", after: "" };
  return null;
}

/** The phase after `phase` (done → killed → runs), skipping a status kept forever. */
function nextPhase(step: RetentionStep, phase: "done" | "killed"): RetentionCursor {
  if (phase === "done" && step.killedMs !== null) return { phase: "killed", after: "" };
  return { phase: "runs", after: [NEVER, ""] };
}

function leasedElsewhere(db: Database, lease: string, holder: string, now: number): boolean {
  const row = db.get<{ holder: string; expires_at: number }>(
    "SELECT holder, expires_at FROM apalis_leases WHERE name = ?",
    [lease],
  );
  return row !== undefined && row.holder !== holder && row.expires_at > now;
}

/**
 * Takes or renews the lease, inside the caller's write transaction: a compare-and-set on its
 * holder and expiry. Whether `holder` holds it now.
 */
export function takeLease(
  db: Database,
  lease: string,
  holder: string,
  now: number,
  leaseMs: number,
): boolean {
  return db.all(
    `INSERT INTO apalis_leases (name, holder, expires_at) VALUES (?, ?, ?)
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
     WHERE apalis_leases.holder = excluded.holder OR apalis_leases.expires_at <= ?
     RETURNING holder`,
    [lease, holder, now + leaseMs, now],
  ).length === 1;
}

/**
 * The expired tasks of one status among the next entries of the queue's finished-tasks index
 * after `after`: at most `batchSize` of them, in at most `READ_FACTOR` times as many entries.
 */
function readExpiredTasks(
  db: Database,
  step: RetentionStep,
  status: "done" | "killed",
  cutoffs: Cutoffs,
  after: string,
): { ids: string[]; next: RetentionCursor | null } {
  const limit = step.batchSize * READ_FACTOR;
  const rows = db.values<[string, number]>(
    `SELECT id, done_at <= ? AND ${ALONE} FROM apalis_tasks AS t
     WHERE ${IS_FINISHED} AND queue = ? AND status = ? AND id > ?
     ORDER BY id LIMIT ?`,
    [cutoffs[status], step.queue, status, after, limit],
  );
  const ids: string[] = [];
  for (const [id, expired] of rows) {
    if (expired) ids.push(id);
    if (ids.length === step.batchSize) return { ids, next: { phase: status, after: id } };
  }
  if (rows.length < limit) return { ids, next: nextPhase(step, status) };
  return { ids, next: { phase: status, after: rows.at(-1)![0] } };
}

/** Deletes those of `ids` that are still expired tasks of the queue in `status`; how many. */
function deleteTasks(
  db: Database,
  queue: string,
  status: "done" | "killed",
  cutoffs: Cutoffs,
  ids: readonly string[],
): number {
  return db.run(
    `DELETE FROM apalis_tasks AS t
     WHERE id IN (SELECT value FROM json_each(?)) AND queue = ? AND status = ? AND done_at <= ?
       AND ${ALONE}`,
    [JSON.stringify(ids), queue, status, cutoffs[status]],
  ).changes;
}

/**
 * The queue's finished runs after `after` (by finish time, then id) whose tasks have all
 * expired: runs until they hold `batchSize` tasks (at least one run), among at most
 * `batchSize` runs read.
 */
export function readExpiredRuns(
  db: Database,
  queue: string,
  batchSize: number,
  cutoffs: Cutoffs,
  after: readonly [number, string] = [NEVER, ""],
): { ids: string[]; next: Extract<RetentionCursor, { phase: "runs" }> | null } {
  const limit = batchSize;
  const rows = db.values<[string, number, number, number]>(
    `SELECT r.id, r.done_at, ${EXPIRED_RUN},
       (SELECT count(*) FROM apalis_tasks AS t WHERE t.run_id = r.id)
     FROM apalis_runs AS r
     WHERE r.status <> 'running' AND r.queue = ? AND r.done_at <= ? AND (r.done_at, r.id) > (?, ?)
     ORDER BY r.done_at, r.id LIMIT ?`,
    [
      cutoffs.done,
      cutoffs.killed,
      cutoffs.done,
      cutoffs.killed,
      queue,
      Math.max(cutoffs.done, cutoffs.killed),
      after[0],
      after[1],
      limit,
    ],
  );
  const ids: string[] = [];
  let tasks = 0;
  for (const [id, doneAt, expired, count] of rows) {
    if (expired) {
      ids.push(id);
      tasks += count;
    }
    if (tasks >= batchSize) return { ids, next: { phase: "runs", after: [doneAt, id] } };
  }
  if (rows.length < limit) return { ids, next: null };
  const [id, doneAt] = rows.at(-1)!;
  return { ids, next: { phase: "runs", after: [doneAt, id] } };
}

/**
 * Deletes those of the runs `ids` whose tasks have all still expired, with their tasks and
 * joins; how many of each.
 */
export function deleteRuns(
  db: Database,
  ids: readonly string[],
  cutoffs: Cutoffs,
): { tasks: number; runs: number } {
  const expired = JSON.stringify(
    db.values<[string]>(
      `SELECT r.id FROM apalis_runs AS r
       WHERE r.id IN (SELECT value FROM json_each(?)) AND ${EXPIRED_RUN}`,
      [JSON.stringify(ids), cutoffs.done, cutoffs.killed, cutoffs.done, cutoffs.killed],
    ).map(([id]) => id),
  );
  return deleteRunsWhole(db, expired);
}

/** Deletes runs (their ids as a JSON array) with their tasks and joins; how many of each. */
function deleteRunsWhole(db: Database, idsJson: string): { tasks: number; runs: number } {
  const tasks = db.run(
    "DELETE FROM apalis_tasks WHERE run_id IN (SELECT value FROM json_each(?))",
    [idsJson],
  ).changes;
  db.run("DELETE FROM apalis_join_parts WHERE run_id IN (SELECT value FROM json_each(?))", [
    idsJson,
  ]);
  db.run("DELETE FROM apalis_joins WHERE run_id IN (SELECT value FROM json_each(?))", [idsJson]);
  const runs = db.run("DELETE FROM apalis_runs WHERE id IN (SELECT value FROM json_each(?))", [
    idsJson,
  ]).changes;
  return { tasks, runs };
}

/** The queues that have finished runs: vacuum goes through their runs one queue at a time. */
export function queuesWithFinishedRuns(db: Database): string[] {
  return db.values<[string]>(
    "SELECT DISTINCT queue FROM apalis_runs WHERE status <> 'running' ORDER BY queue",
  ).map(([queue]) => queue);
}
