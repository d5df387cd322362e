import type { Database } from "../sqlite/types.ts";
import type { TaskRow } from "./tasks.ts";

export { RUN_STATUSES, type RunListRow, type RunRow, type RunStatus } from "../backend/types.ts";
import type { JoinPartRow, RunListRow, RunRow, RunStatus } from "../backend/types.ts";
export type { JoinPartRow } from "../backend/types.ts";

/** Records a new run (its first tasks are inserted in the same transaction by the caller). */
export function runInsert(db: Database, run: { id: string; queue: string; now: number }): void {
  db.run("INSERT INTO apalis_runs (id, queue, created_at) VALUES (?, ?, ?)", [
    run.id,
    run.queue,
    run.now,
  ]);
}

/** Reads one run. */
export function runGet(db: Database, id: string): RunRow | undefined {
  return db.get<RunRow>("SELECT * FROM apalis_runs WHERE id = ?", [id]);
}

/** Whether a run may still go on (it has not failed or finished). */
export function runIsRunning(db: Database, id: string): boolean {
  return db.get<{ status: string }>("SELECT status FROM apalis_runs WHERE id = ?", [id])
    ?.status === "running";
}

/**
 * Names the workflow that runs a run and records its shape, once (the push that started it may
 * not know them).
 */
export function runSetWorkflow(db: Database, id: string, workflow: string, graph: string): void {
  db.run("UPDATE apalis_runs SET workflow = ?, graph = ? WHERE id = ? AND workflow IS NULL", [
    workflow,
    graph,
    id,
  ]);
}

/** Runs newest first (ids are time-ordered), filtered by queue and state. */
export function runList(
  db: Database,
  filter: { queue?: string; status?: RunStatus; limit: number; offset: number },
): RunListRow[] {
  return db.all<RunListRow>(
    `SELECT r.id, r.queue, r.workflow, r.status, r.created_at, r.done_at, r.error,
       (SELECT count(*) FROM apalis_tasks AS t WHERE t.run_id = r.id) AS tasks,
       (SELECT count(*) FROM apalis_tasks AS t
        WHERE t.run_id = r.id AND t.status = 'done') AS tasks_done,
       (SELECT count(*) FROM apalis_tasks AS t
        WHERE t.run_id = r.id AND t.status IN ('pending','queued','running','failed'))
         AS tasks_active,
       (SELECT count(*) FROM apalis_tasks AS t
        WHERE t.run_id = r.id AND t.status = 'killed') AS tasks_killed
     FROM apalis_runs AS r
     WHERE (?1 IS NULL OR r.queue = ?1) AND (?2 IS NULL OR r.status = ?2)
     ORDER BY r.id DESC LIMIT ?3 OFFSET ?4`,
    [filter.queue ?? null, filter.status ?? null, filter.limit, filter.offset],
  );
}

/** Marks a running run done with its final result. */
export function runComplete(
  db: Database,
  id: string,
  result: Uint8Array | null,
  now: number,
): boolean {
  return db.run(
    `UPDATE apalis_runs SET status = 'done', result = ?, done_at = ?
     WHERE id = ? AND status = 'running'`,
    [result, now, id],
  ).changes === 1;
}

/** Every task of a run, in the order they were enqueued. */
export function runTasks(db: Database, id: string): TaskRow[] {
  return db.all<TaskRow>(
    `SELECT id, queue, status, args, attempts, max_attempts, priority, run_at, created_at,
       lock_by, lock_at, done_at, last_result, last_error, meta, backoff, run_id, step
     FROM apalis_tasks WHERE run_id = ? ORDER BY run_seq`,
    [id],
  );
}

/** What a join enqueues when its last part arrives. */
export interface JoinSpec {
  runId: string;
  key: string;
  expected: number;
  taskId: string;
  queue: string;
  args: Uint8Array;
  step: string;
  priority: number;
  maxAttempts: number;
  meta: string | null;
  backoff: string | null;
}

/** Declares a join; a second declaration of the same key is ignored. */
export function joinDeclare(db: Database, join: JoinSpec): void {
  db.run(
    `INSERT OR IGNORE INTO apalis_joins (run_id, join_key, expected, task_id, queue, args, step,
       priority, max_attempts, meta, backoff) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      join.runId,
      join.key,
      join.expected,
      join.taskId,
      join.queue,
      join.args,
      join.step,
      join.priority,
      join.maxAttempts,
      join.meta,
      join.backoff,
    ],
  );
}

/** The continuation insert shared by code and the trigger: once, when every part is in. */
const ENQUEUE_COMPLETE_JOINS = `INSERT OR IGNORE INTO apalis_tasks (id, queue, status, args,
    attempts, max_attempts, priority, run_at, created_at, meta, backoff, run_id, step, run_seq)
  SELECT j.task_id, j.queue, 'pending', coalesce(?, j.args), 0, j.max_attempts, j.priority, ?, ?,
    j.meta,
    j.backoff, j.run_id, j.step,
    (SELECT coalesce(max(run_seq), 0) + 1 FROM apalis_tasks WHERE run_id = j.run_id)
  FROM apalis_joins AS j
  WHERE j.run_id = ? AND j.join_key = ?
    AND (SELECT count(*) FROM apalis_join_parts AS p
         WHERE p.run_id = j.run_id AND p.join_key = j.join_key) = j.expected
    AND (SELECT status FROM apalis_runs WHERE id = j.run_id) = 'running'`;

/**
 * Enqueues a join's continuation if all its parts are in and its run is running, with `args`
 * as its payload (the declared placeholder when absent). Its task id is fixed when the join is
 * declared, so this is idempotent: never enqueued twice.
 */
export function joinEnqueueIfComplete(
  db: Database,
  join: { runId: string; key: string; now: number; args?: Uint8Array },
): boolean {
  return db.run(ENQUEUE_COMPLETE_JOINS, [
    join.args ?? null,
    join.now,
    join.now,
    join.runId,
    join.key,
  ]).changes === 1;
}

/** Records one part of a join (from code, for a task that feeds several joins). */
export function joinAddPart(
  db: Database,
  part: { runId: string; key: string; slot: number; result: Uint8Array | null },
): void {
  db.run(
    `INSERT OR IGNORE INTO apalis_join_parts (run_id, join_key, slot, status, result)
     VALUES (?, ?, ?, 'done', ?)`,
    [part.runId, part.key, part.slot, part.result],
  );
}

/** The parts of a join, by slot. */
export function joinParts(db: Database, runId: string, key: string): JoinPartRow[] {
  return db.all<JoinPartRow>(
    `SELECT slot, status, result, error FROM apalis_join_parts
     WHERE run_id = ? AND join_key = ? ORDER BY slot`,
    [runId, key],
  );
}
