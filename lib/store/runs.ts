import type { Database } from "../sqlite/types.ts";
import type { TaskRow } from "./tasks.ts";

/** Where a workflow run stands: `running` until its last step is done, or `failed` when a step is killed. */
export type RunStatus = "running" | "done" | "failed";

/** A workflow run as stored. */
export interface RunRow {
  id: string;
  queue: string;
  workflow: string | null;
  status: RunStatus;
  created_at: number;
  done_at: number | null;
  result: Uint8Array | null;
  error: string | null;
}

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

/** Names the workflow that runs a run, once (the push that started it may not know it). */
export function runSetWorkflow(db: Database, id: string, workflow: string): void {
  db.run("UPDATE apalis_runs SET workflow = ? WHERE id = ? AND workflow IS NULL", [workflow, id]);
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

/** Every task of a run, oldest first. */
export function runTasks(db: Database, id: string): TaskRow[] {
  return db.all<TaskRow>(
    `SELECT id, queue, status, args, attempts, max_attempts, priority, run_at, created_at,
       lock_by, lock_at, done_at, last_result, last_error, meta, backoff, run_id, step
     FROM apalis_tasks WHERE run_id = ? ORDER BY id`,
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
}

/** Declares a join; a second declaration of the same key is ignored. */
export function joinDeclare(db: Database, join: JoinSpec): void {
  db.run(
    `INSERT OR IGNORE INTO apalis_joins (run_id, join_key, expected, task_id, queue, args, step,
       priority, max_attempts, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
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
    ],
  );
}

/** A part of a join, as recorded. */
export interface JoinPartRow {
  slot: number;
  status: "done" | "killed";
  result: Uint8Array | null;
  error: string | null;
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
