/**
 * Retention on PostgreSQL: the statements behind `Backend.retentionStep` and
 * `retentionRelease`. A step reads a window of a queue's finished tasks (or finished runs)
 * without locks, then deletes the expired ones it found in one transaction that first takes the
 * queue's retention lease (`apalis_leases`) with a compare-and-set, which locks the lease row
 * until it commits, and checks again, on the rows it deletes, what it read.
 *
 * @module
 */
import type { RetentionCursor, RetentionStep, RetentionStepResult } from "../backend/types.ts";
import type { PostgresConnection } from "./connection.ts";
import type { Executor } from "./tasks.ts";

// deno-lint-ignore no-explicit-any
type Param = any;

/** A time no task finished at or before: the cutoff of a status kept forever. */
const NEVER = Number.MIN_SAFE_INTEGER;
/** Entries a step reads per task it may delete, at most. */
const READ_FACTOR = 5;

/** The lease's name for a queue's retention. */
function retentionLease(queue: string): string {
  return `retention:${queue}`;
}

/** The cutoffs of a step: tasks that finished at or before them have expired. */
export interface Cutoffs {
  done: number;
  killed: number;
}

/** A task that may go on its own: in no run, or in a run whose row is gone. */
const ALONE = "(t.run_id IS NULL OR NOT EXISTS (SELECT 1 FROM apalis_runs WHERE id = t.run_id))";

/**
 * The finished runs whose tasks have all expired: the run by its own outcome's age, each of its
 * tasks by its own. `$1`: done cutoff, `$2`: killed cutoff.
 */
const EXPIRED_RUN = `r.status <> 'running'
  AND (r.status = 'done' AND r.done_at <= $1::bigint
       OR r.status = 'failed' AND r.done_at <= $2::bigint)
  AND NOT EXISTS (SELECT 1 FROM apalis_tasks AS t WHERE t.run_id = r.id
    AND NOT (t.status = 'done' AND t.done_at <= $1::bigint
             OR t.status = 'killed' AND t.done_at <= $2::bigint))`;

/** One step of a queue's retention pass (see `Backend.retentionStep`). */
export async function retentionStep(
  sql: PostgresConnection["sql"],
  step: RetentionStep,
): Promise<RetentionStepResult> {
  const now = step.now ?? (await sql<{ now: number }[]>`SELECT apalis_now() AS now`)[0]!.now;
  const cutoffs: Cutoffs = {
    done: step.doneMs === null ? NEVER : now - step.doneMs,
    killed: step.killedMs === null ? NEVER : now - step.killedMs,
  };
  const lease = retentionLease(step.queue);
  if (step.after === undefined) {
    const [row] = await sql<{ holder: string; expires_at: number }[]>`
      SELECT holder, expires_at FROM apalis_leases WHERE name = ${lease}`;
    if (row !== undefined && row.holder !== step.holder && row.expires_at > now) {
      return { outcome: "leased", tasks: 0, runs: 0, next: null };
    }
  }
  const cursor = step.after ?? firstCursor(step);
  if (cursor === null) return { outcome: "none", tasks: 0, runs: 0, next: null };
  const found = cursor.phase === "runs"
    ? await readExpiredRuns(sql, step.queue, step.batchSize, cutoffs, cursor.after)
    : await readExpiredTasks(sql, step, cursor.phase, cutoffs, cursor.after);
  if (found.ids.length === 0) return { outcome: "none", tasks: 0, runs: 0, next: found.next };
  return await sql.begin(async (tx): Promise<RetentionStepResult> => {
    const [taken] = await tx<{ held_from: number }[]>`
      INSERT INTO apalis_leases AS l (name, holder, expires_at)
      VALUES (${lease}, ${step.holder}, ${now + step.leaseMs}::bigint)
      ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
      WHERE l.holder = excluded.holder OR l.expires_at <= ${now}::bigint
      RETURNING extract(epoch FROM clock_timestamp())::float8 * 1000 AS held_from`;
    if (taken === undefined) return { outcome: "leased", tasks: 0, runs: 0, next: null };
    const deleted = cursor.phase === "runs"
      ? await deleteRuns(tx, found.ids, cutoffs)
      : { tasks: await deleteTasks(tx, step.queue, cursor.phase, cutoffs, found.ids), runs: 0 };
    const [end] = await tx<{ held_to: number }[]>`
      SELECT extract(epoch FROM clock_timestamp())::float8 * 1000 AS held_to`;
    return {
      outcome: "deleted",
      ...deleted,
      next: found.next,
      held: { from: taken.held_from, to: end!.held_to },
    };
  });
}

/**
 * Ends a pass: the lease becomes `holder`'s until `nextInMs` after now, if it is free, expired or
 * its own (see `Backend.retentionRelease`).
 */
export async function retentionRelease(
  sql: Executor,
  release: { queue: string; holder: string; nextInMs: number; now?: number },
): Promise<void> {
  await sql`
    WITH t AS (SELECT coalesce(${release.now ?? null}::bigint, apalis_now()) AS now)
    INSERT INTO apalis_leases AS l (name, holder, expires_at)
    SELECT ${retentionLease(release.queue)}, ${release.holder}, t.now + ${release.nextInMs}::bigint
    FROM t
    ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
    WHERE l.holder = excluded.holder
       OR l.expires_at <= excluded.expires_at - ${release.nextInMs}::bigint`;
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

/**
 * The expired tasks of one status among the next entries of the queue's finished-tasks index
 * after `after`: at most `batchSize` of them, in at most `READ_FACTOR` times as many entries.
 */
async function readExpiredTasks(
  sql: Executor,
  step: RetentionStep,
  status: "done" | "killed",
  cutoffs: Cutoffs,
  after: string,
): Promise<{ ids: string[]; next: RetentionCursor | null }> {
  const limit = step.batchSize * READ_FACTOR;
  const rows = await sql.unsafe<{ id: string; expired: boolean }[]>(
    `SELECT t.id, t.done_at <= $1::bigint AND ${ALONE} AS expired FROM apalis_tasks AS t
     WHERE t.status IN ('done','failed','killed') AND t.queue = $2 AND t.status = $3
       AND t.id > $4 COLLATE "C"
     ORDER BY t.queue, t.status, t.id LIMIT $5::int`,
    [cutoffs[status], step.queue, status, after, limit] as Param,
  );
  const ids: string[] = [];
  for (const { id, expired } of rows) {
    if (expired) ids.push(id);
    if (ids.length === step.batchSize) return { ids, next: { phase: status, after: id } };
  }
  if (rows.length < limit) return { ids, next: nextPhase(step, status) };
  return { ids, next: { phase: status, after: rows.at(-1)!.id } };
}

/** Deletes those of `ids` that are still expired tasks of the queue in `status`; how many. */
async function deleteTasks(
  tx: Executor,
  queue: string,
  status: "done" | "killed",
  cutoffs: Cutoffs,
  ids: readonly string[],
): Promise<number> {
  const deleted = await tx.unsafe(
    `DELETE FROM apalis_tasks AS t
     WHERE t.id = ANY($1::text[]) AND t.queue = $2 AND t.status = $3 AND t.done_at <= $4::bigint
       AND ${ALONE}`,
    [ids, queue, status, cutoffs[status]] as Param,
  );
  return deleted.count;
}

/**
 * The queue's finished runs after `after` (by finish time, then id) whose tasks have all
 * expired: runs until they hold `batchSize` tasks (at least one run), among at most
 * `batchSize` runs read.
 */
export async function readExpiredRuns(
  sql: Executor,
  queue: string,
  batchSize: number,
  cutoffs: Cutoffs,
  after: readonly [number, string] = [NEVER, ""],
): Promise<{ ids: string[]; next: Extract<RetentionCursor, { phase: "runs" }> | null }> {
  const limit = batchSize;
  const rows = await sql.unsafe<
    { id: string; done_at: number; expired: boolean; tasks: number }[]
  >(
    `SELECT r.id, r.done_at, ${EXPIRED_RUN} AS expired,
       (SELECT count(*) FROM apalis_tasks AS t WHERE t.run_id = r.id)::bigint AS tasks
     FROM apalis_runs AS r
     WHERE r.status <> 'running' AND r.queue = $3 AND r.done_at <= $4::bigint
       AND (r.done_at, r.id) > ($5::bigint, $6::text COLLATE "C")
     ORDER BY r.done_at, r.id LIMIT $7::int`,
    [
      cutoffs.done,
      cutoffs.killed,
      queue,
      Math.max(cutoffs.done, cutoffs.killed),
      after[0],
      after[1],
      limit,
    ] as Param,
  );
  const ids: string[] = [];
  let tasks = 0;
  for (const row of rows) {
    if (row.expired) {
      ids.push(row.id);
      tasks += row.tasks;
    }
    if (tasks >= batchSize) return { ids, next: { phase: "runs", after: [row.done_at, row.id] } };
  }
  if (rows.length < limit) return { ids, next: null };
  const last = rows.at(-1)!;
  return { ids, next: { phase: "runs", after: [last.done_at, last.id] } };
}

/**
 * Deletes those of the runs `ids` whose tasks have all still expired, with their tasks and
 * joins, in the transaction `tx`; how many of each. It locks the runs' tasks first, then the
 * runs: the order of a retry by hand (a task, then its run's bookkeeping), so the two wait for
 * each other rather than deadlock, and the check after the locks sees their last state.
 */
export async function deleteRuns(
  tx: Executor,
  ids: readonly string[],
  cutoffs: Cutoffs,
): Promise<{ tasks: number; runs: number }> {
  await tx`
    SELECT 1 FROM apalis_tasks WHERE run_id = ANY(${ids as Param}::text[]) ORDER BY id FOR UPDATE`;
  await tx`
    SELECT 1 FROM apalis_runs WHERE id = ANY(${ids as Param}::text[]) ORDER BY id FOR UPDATE`;
  const expired = (await tx.unsafe<{ id: string }[]>(
    `SELECT r.id FROM apalis_runs AS r WHERE r.id = ANY($3::text[]) AND ${EXPIRED_RUN}`,
    [cutoffs.done, cutoffs.killed, ids] as Param,
  )).map((row) => row.id);
  if (expired.length === 0) return { tasks: 0, runs: 0 };
  const tasks = await tx`DELETE FROM apalis_tasks WHERE run_id = ANY(${expired as Param}::text[])`;
  await tx`DELETE FROM apalis_join_parts WHERE run_id = ANY(${expired as Param}::text[])`;
  await tx`DELETE FROM apalis_joins WHERE run_id = ANY(${expired as Param}::text[])`;
  const runs = await tx`DELETE FROM apalis_runs WHERE id = ANY(${expired as Param}::text[])`;
  return { tasks: tasks.count, runs: runs.count };
}

/** The queues that have finished runs: vacuum goes through their runs one queue at a time. */
export async function queuesWithFinishedRuns(sql: Executor): Promise<string[]> {
  const rows = await sql<{ queue: string }[]>`
    SELECT DISTINCT queue FROM apalis_runs WHERE status <> 'running' ORDER BY queue`;
  return rows.map((row) => row.queue);
}
