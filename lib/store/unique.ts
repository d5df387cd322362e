/**
 * Unique pushes on SQLite: the key a task holds in its queue (`apalis_unique`, one row per key).
 *
 * @module
 */
import type { Database } from "../sqlite/types.ts";
import type { NewTaskRow, UniqueSpec } from "../backend/types.ts";
import { taskInsertUnique } from "./tasks.ts";

// One statement both checks and claims the key, so that the holder's state is read under the
// write lock the statement takes (even inside a caller's deferred transaction): a new key is
// inserted; a held key changes hands only when its holder no longer blocks (deleted, in none of
// the push's states, or pushed `period` or more before this push). RETURNING answers a row only
// when this push now holds the key. Parameters: queue, key, task id, now, states (JSON), period.
const CLAIM_KEY_SQL = `INSERT INTO apalis_unique (queue, key, task_id, created_at)
  VALUES (?1, ?2, ?3, ?4)
  ON CONFLICT (queue, key) DO UPDATE SET task_id = excluded.task_id,
    created_at = excluded.created_at
  WHERE NOT EXISTS (
    SELECT 1 FROM apalis_tasks AS t
    WHERE t.id = apalis_unique.task_id AND t.status IN (SELECT value FROM json_each(?5))
      AND (?6 IS NULL OR apalis_unique.created_at + ?6 > ?4))
  RETURNING task_id`;

const HOLDER_SQL = "SELECT task_id FROM apalis_unique WHERE queue = ? AND key = ?";

/**
 * Claims `row`'s key and inserts it, or returns the id of the task that holds the key and blocks
 * it (nothing written). Call inside a write transaction; the row's `unique` is set. Fails on a
 * duplicate task id (the caller's transaction then rolls the claim back).
 */
export function taskInsertIfUnique(db: Database, row: NewTaskRow): string | null {
  const unique = row.unique as UniqueSpec;
  const now = unique.now ?? row.createdAt;
  const claimed = db.values(CLAIM_KEY_SQL, [
    row.queue,
    unique.key,
    row.id,
    now,
    JSON.stringify(unique.states),
    unique.periodMs,
  ]);
  if (claimed.length === 0) {
    const holder = db.values<[string]>(HOLDER_SQL, [row.queue, unique.key])[0];
    if (holder === undefined) {
      throw new Error(`Cannot push a unique task to queue '${row.queue}': its key has no holder`);
    }
    return holder[0];
  }
  taskInsertUnique(db, row, unique.key);
  return null;
}
