/**
 * The `runs` table that `worker_process.ts` records every execution in, with busy-safe queries
 * and assertions over it. Uses no `Deno.*` API: `runtime_e2e.ts` and `worker_process.ts` run under
 * Bun too.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Database } from "../../mod.ts";
import { retryBusy } from "../../lib/sqlite/busy.ts";

/** The table every execution is recorded in. */
export const RUNS_DDL = `CREATE TABLE IF NOT EXISTS runs (
  seq     INTEGER PRIMARY KEY,
  task_id TEXT NOT NULL,
  worker  TEXT NOT NULL,
  pid     INTEGER NOT NULL,
  attempt INTEGER NOT NULL
)`;

/**
 * `n` is 1 while queue `?` (bound twice) has a pending, failed, queued or running task. Each
 * EXISTS repeats a partial index's condition word for word, so it reads one index entry however
 * many tasks are done (a count would read them all).
 */
export const UNFINISHED_SQL = `SELECT EXISTS (SELECT 1 FROM apalis_tasks
                                    WHERE status IN ('pending','failed') AND queue = ?)
                         OR EXISTS (SELECT 1 FROM apalis_tasks
                                    WHERE status IN ('queued','running') AND queue = ?) AS n`;

/** The column `n` of the one row `sql` returns, retried while the database is busy. */
export function scalar(
  db: Database,
  sql: string,
  params: (string | number)[] = [],
): Promise<number> {
  return retryBusy(db, () => db.get<{ n: number }>(sql, params)!.n);
}

/** The column `id` of every row `sql` returns, retried while the database is busy. */
export function column(
  db: Database,
  sql: string,
  params: (string | number)[] = [],
): Promise<string[]> {
  return retryBusy(db, () => db.all<{ id: string }>(sql, params).map((row) => row.id));
}

/** Asserts that `runs` names `total` distinct tasks and none that is not in `apalis_tasks`. */
export async function assertRunsCoverTasks(db: Database, total: number): Promise<void> {
  assert.equal(
    await scalar(db, "SELECT count(DISTINCT task_id) AS n FROM runs"),
    total,
    "distinct task ids in runs",
  );
  assert.equal(
    await scalar(
      db,
      "SELECT count(*) AS n FROM runs WHERE task_id NOT IN (SELECT id FROM apalis_tasks)",
    ),
    0,
    "runs of unknown tasks",
  );
}
