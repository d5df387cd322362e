import type { HeldAttempt, LostAttemptRow } from "../backend/types.ts";
import type { Database } from "../sqlite/types.ts";

/**
 * Of the attempts `worker` runs, those whose task is no longer `running` at that attempt under
 * `worker` (killed, rescued, retried, deleted), with where the task stands now. One read by
 * primary key per attempt.
 */
export function workerLostAttempts(
  db: Database,
  worker: string,
  held: readonly HeldAttempt[],
): LostAttemptRow[] {
  if (held.length === 0) return [];
  return db.all<LostAttemptRow>(
    `SELECT j.value ->> 0 AS id, j.value ->> 1 AS attempt, t.status, t.lock_by, t.attempts,
       t.last_error
     FROM json_each(?1) AS j LEFT JOIN apalis_tasks AS t ON t.id = j.value ->> 0
     WHERE t.id IS NULL OR t.status <> 'running' OR t.lock_by IS NOT ?2
       OR t.attempts <> j.value ->> 1`,
    [JSON.stringify(held.map((item) => [item.id, item.attempt])), worker],
  );
}
