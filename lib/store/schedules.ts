/**
 * Cron schedules on SQLite: the statements behind the backend's `schedule*` operations. Every
 * write runs inside the caller's `BEGIN IMMEDIATE` transaction (see `SqliteBackend`).
 *
 * @module
 */
import type {
  CatchUp,
  NewTaskRow,
  ScheduleAdvance,
  ScheduleRow,
  ScheduleUpsert,
} from "../backend/types.ts";
import type { Database, SqlValue } from "../sqlite/types.ts";

const COLUMNS = "name, queue, cron, timezone, args, priority, max_attempts, meta, catch_up, " +
  "paused, next_at, last_at, last_task_id, revision, created_at, updated_at";

type StoredSchedule = Omit<ScheduleRow, "paused" | "catch_up"> & {
  paused: number;
  catch_up: string;
};

function scheduleOf(row: StoredSchedule): ScheduleRow {
  return { ...row, paused: row.paused !== 0, catch_up: row.catch_up as CatchUp };
}

/**
 * Creates or replaces a schedule of the same queue (see `Backend.scheduleUpsert`); returns the
 * queue that owns the name when it is another one.
 */
export function scheduleUpsert(db: Database, s: ScheduleUpsert): string | null {
  const changed = db.run(
    `INSERT INTO apalis_schedules (name, queue, cron, timezone, args, priority, max_attempts,
       meta, catch_up, paused, next_at, created_at, updated_at)
     VALUES (?, ?, ?, ?, CAST(? AS BLOB), ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (name) DO UPDATE SET
       next_at = CASE WHEN cron <> excluded.cron OR timezone IS NOT excluded.timezone
                        OR (paused <> 0 AND excluded.paused = 0)
                      THEN excluded.next_at ELSE next_at END,
       cron = excluded.cron, timezone = excluded.timezone, args = excluded.args,
       priority = excluded.priority, max_attempts = excluded.max_attempts, meta = excluded.meta,
       catch_up = excluded.catch_up, paused = excluded.paused, revision = revision + 1,
       updated_at = excluded.updated_at
     WHERE queue = excluded.queue`,
    [
      s.name,
      s.queue,
      s.cron,
      s.timezone,
      s.args,
      s.priority,
      s.maxAttempts,
      s.meta,
      s.catchUp,
      s.paused ? 1 : 0,
      s.nextAt,
      s.now,
      s.now,
    ],
  ).changes;
  if (changed > 0) return null;
  return db.get<{ queue: string }>("SELECT queue FROM apalis_schedules WHERE name = ?", [s.name])!
    .queue;
}

/** Deletes a schedule of a queue; whether there was one. */
export function scheduleDelete(db: Database, name: string, queue: string): boolean {
  return db.run("DELETE FROM apalis_schedules WHERE name = ? AND queue = ?", [name, queue])
    .changes > 0;
}

/** Schedules by name, of one queue or all. */
export function scheduleList(db: Database, queue?: string): ScheduleRow[] {
  const rows = queue === undefined
    ? db.all<StoredSchedule>(`SELECT ${COLUMNS} FROM apalis_schedules ORDER BY name`)
    : db.all<StoredSchedule>(
      `SELECT ${COLUMNS} FROM apalis_schedules WHERE queue = ? ORDER BY name`,
      [queue],
    );
  return rows.map(scheduleOf);
}

/** Running schedules of a queue due at `now`, earliest first, and the next tick of the rest. */
export function scheduleDue(
  db: Database,
  queue: string,
  limit: number,
  now: number,
): { due: ScheduleRow[]; nextAt: number | null } {
  const due = db.all<StoredSchedule>(
    `SELECT ${COLUMNS} FROM apalis_schedules
     WHERE queue = ? AND paused = 0 AND next_at <= ? ORDER BY next_at LIMIT ?`,
    [queue, now, limit],
  ).map(scheduleOf);
  const next = db.get<{ next_at: number | null }>(
    `SELECT min(next_at) AS next_at FROM apalis_schedules
     WHERE queue = ? AND paused = 0 AND next_at > ?`,
    [queue, now],
  );
  return { due, nextAt: next?.next_at ?? null };
}

/**
 * Moves a schedule past its due ticks if it is still where the advance was computed from, and
 * inserts the ticks' tasks (ids already taken are skipped); whether it moved.
 */
export function scheduleAdvance(db: Database, advance: ScheduleAdvance): boolean {
  const last = advance.tasks.at(-1);
  const moved = db.run(
    `UPDATE apalis_schedules SET next_at = ?, last_at = coalesce(?, last_at),
       last_task_id = coalesce(?, last_task_id)
     WHERE name = ? AND queue = ? AND revision = ? AND next_at = ? AND paused = 0`,
    [
      advance.to,
      last?.runAt ?? null,
      last?.id ?? null,
      advance.name,
      advance.queue,
      advance.revision,
      advance.from,
    ],
  ).changes > 0;
  if (moved) { for (const task of advance.tasks) insertIgnoringTaken(db, task); }
  return moved;
}

function insertIgnoringTaken(db: Database, task: NewTaskRow): void {
  const values: SqlValue[] = [
    task.id,
    task.queue,
    task.args,
    task.maxAttempts,
    task.priority,
    task.runAt,
    task.createdAt,
    task.meta,
  ];
  db.run(
    `INSERT OR IGNORE INTO apalis_tasks (id, queue, args, max_attempts, priority, run_at,
       created_at, meta)
     VALUES (?, ?, CAST(? AS BLOB), ?, ?, ?, ?, ?)`,
    values,
  );
}
