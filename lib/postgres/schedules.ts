/**
 * Cron schedules on PostgreSQL: the statements behind the backend's `schedule*` operations.
 * `now` is the caller's clock, or NULL for the database's time (`apalis_now()`).
 *
 * @module
 */
import type { ScheduleAdvance, ScheduleRow, ScheduleUpsert } from "../backend/types.ts";
import { bytesOf, type Executor, plainBytes } from "./tasks.ts";

// deno-lint-ignore no-explicit-any
type Param = any;

const COLUMNS = "name, queue, cron, timezone, args, priority, max_attempts, meta, catch_up, " +
  "paused, next_at, last_at, last_task_id, revision, created_at, updated_at";

function scheduleOf(row: ScheduleRow): ScheduleRow {
  return { ...row, args: plainBytes(row.args) };
}

/**
 * Creates or replaces a schedule of the same queue (see `Backend.scheduleUpsert`); returns the
 * queue that owns the name when it is another one. One statement: the row lock of the conflict
 * orders it with concurrent upserts and advances.
 */
export async function scheduleUpsert(sql: Executor, s: ScheduleUpsert): Promise<string | null> {
  const [row] = await sql<{ written: boolean; queue: string }[]>`
    WITH upserted AS (
      INSERT INTO apalis_schedules AS s (name, queue, cron, timezone, args, priority,
        max_attempts, meta, catch_up, paused, next_at, created_at, updated_at)
      VALUES (${s.name}, ${s.queue}, ${s.cron}, ${s.timezone}, ${bytesOf(s.args)},
        ${s.priority}::bigint, ${s.maxAttempts}::bigint, ${s.meta}, ${s.catchUp}, ${s.paused},
        ${s.nextAt}::bigint, ${s.now}::bigint, ${s.now}::bigint)
      ON CONFLICT (name) DO UPDATE SET
        next_at = CASE WHEN s.cron <> excluded.cron OR s.timezone IS DISTINCT FROM excluded.timezone
                         OR (s.paused AND NOT excluded.paused)
                       THEN excluded.next_at ELSE s.next_at END,
        cron = excluded.cron, timezone = excluded.timezone, args = excluded.args,
        priority = excluded.priority, max_attempts = excluded.max_attempts, meta = excluded.meta,
        catch_up = excluded.catch_up, paused = excluded.paused, revision = s.revision + 1,
        updated_at = excluded.updated_at
      WHERE s.queue = excluded.queue
      RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM upserted) AS written,
      (SELECT queue FROM apalis_schedules WHERE name = ${s.name}) AS queue`;
  return row!.written ? null : row!.queue;
}

/** Deletes a schedule of a queue; whether there was one. */
export async function scheduleDelete(sql: Executor, name: string, queue: string): Promise<boolean> {
  const deleted = await sql`DELETE FROM apalis_schedules WHERE name = ${name} AND queue = ${queue}`;
  return deleted.count > 0;
}

/** Schedules by name, of one queue or all. */
export async function scheduleList(sql: Executor, queue?: string): Promise<ScheduleRow[]> {
  const rows = queue === undefined
    ? await sql.unsafe<ScheduleRow[]>(`SELECT ${COLUMNS} FROM apalis_schedules ORDER BY name`)
    : await sql.unsafe<ScheduleRow[]>(
      `SELECT ${COLUMNS} FROM apalis_schedules WHERE queue = $1 ORDER BY name`,
      [queue],
    );
  return rows.map(scheduleOf);
}

/**
 * Running schedules of a queue due at `now` (the database's time when null), earliest first,
 * the next tick of the rest, and the time used; one statement.
 */
export async function scheduleDue(
  sql: Executor,
  queue: string,
  limit: number,
  now: number | null,
): Promise<{ now: number; due: ScheduleRow[]; nextAt: number | null }> {
  const rows = await sql.unsafe<(ScheduleRow & { now: number; next: number | null })[]>(
    `WITH t AS (SELECT coalesce($2::bigint, apalis_now()) AS now)
     SELECT d.*, t.now, NULL::bigint AS next FROM t, LATERAL (
       SELECT ${COLUMNS} FROM apalis_schedules
       WHERE queue = $1 AND NOT paused AND next_at <= t.now ORDER BY next_at LIMIT $3) AS d
     UNION ALL
     SELECT ${
      COLUMNS.split(", ").map(() => "NULL").join(", ")
    }, t.now, (SELECT min(next_at) FROM apalis_schedules
       WHERE queue = $1 AND NOT paused AND next_at > t.now) FROM t`,
    [queue, now, limit] as Param,
  );
  const summary = rows.at(-1)!;
  return {
    now: summary.now,
    due: rows.slice(0, -1).map(({ now: _now, next: _next, ...row }) => scheduleOf(row)),
    nextAt: summary.next,
  };
}

/**
 * Moves a schedule past its due ticks if it is still where the advance was computed from, and
 * inserts the ticks' tasks (ids already taken are skipped), in the transaction `tx`; whether it
 * moved. A concurrent advance of the same row waits for this one's commit, then matches
 * nothing (READ COMMITTED re-reads the row it waited for).
 */
export async function scheduleAdvance(tx: Executor, advance: ScheduleAdvance): Promise<boolean> {
  const last = advance.tasks.at(-1);
  const moved = await tx`
    UPDATE apalis_schedules SET next_at = ${advance.to}::bigint,
      last_at = coalesce(${last?.runAt ?? null}::bigint, last_at),
      last_task_id = coalesce(${last?.id ?? null}::text, last_task_id)
    WHERE name = ${advance.name} AND queue = ${advance.queue}
      AND revision = ${advance.revision}::bigint AND next_at = ${advance.from}::bigint
      AND NOT paused`;
  if (moved.count === 0) return false;
  const { tasks } = advance;
  if (tasks.length === 0) return true;
  await tx`
    WITH added AS (
      INSERT INTO apalis_tasks (id, queue, args, max_attempts, priority, run_at, created_at, meta)
      SELECT r.id, r.queue, r.args, r.max_attempts, r.priority, r.run_at, r.created_at, r.meta
      FROM unnest(${tasks.map((t) => t.id) as Param}::text[],
        ${tasks.map((t) => t.queue) as Param}::text[],
        ${tasks.map((t) => bytesOf(t.args)) as Param}::bytea[],
        ${tasks.map((t) => t.maxAttempts) as Param}::bigint[],
        ${tasks.map((t) => t.priority) as Param}::bigint[],
        ${tasks.map((t) => t.runAt) as Param}::bigint[],
        ${tasks.map((t) => t.createdAt) as Param}::bigint[],
        ${tasks.map((t) => t.meta) as Param}::text[])
        AS r(id, queue, args, max_attempts, priority, run_at, created_at, meta)
      ON CONFLICT (id) DO NOTHING
      RETURNING 1
    )
    SELECT apalis_notify(${advance.queue}) WHERE EXISTS (SELECT 1 FROM added)`;
  return true;
}
