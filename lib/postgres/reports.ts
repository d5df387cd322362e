/**
 * Progress and log lines on PostgreSQL: written by a worker's flush (in its batch, before the
 * acks), fenced by attempt like acks; read by task.
 *
 * @module
 */
import type { PendingQuery, Row } from "postgres";
import type { LogFilter, LogRow, LogWrite, ProgressWrite } from "../backend/types.ts";
import { type Executor, nowParam } from "./tasks.ts";

// deno-lint-ignore no-explicit-any
type Param = any;

/**
 * Writes running attempts' progress with one statement, each only while its attempt is the
 * task's current `running` one held by `worker`: a stale attempt's progress changes nothing.
 */
export function writeProgress(
  sql: Executor,
  writes: readonly ProgressWrite[],
  worker: string,
  now: number | undefined,
): PendingQuery<Row[]> {
  return sql.unsafe(
    `UPDATE apalis_tasks AS t SET progress = p.value, progress_attempt = p.attempt,
       progress_at = coalesce($4::bigint, apalis_now())
     FROM unnest($1::text[], $2::int[], $3::text[]) AS p(id, attempt, value)
     WHERE t.id = p.id AND t.status = 'running' AND t.lock_by = $5 AND t.attempts = p.attempt`,
    [
      writes.map((write) => write.id),
      writes.map((write) => write.attempt),
      writes.map((write) => write.value),
      nowParam(now),
      worker,
    ] as Param,
    { prepare: false },
  );
}

/** Appends running attempts' log lines in order with one statement, fenced like progress. */
export function appendLogs(
  sql: Executor,
  writes: readonly LogWrite[],
  worker: string,
): PendingQuery<Row[]> {
  const ids: string[] = [];
  const attempts: number[] = [];
  const ats: number[] = [];
  const lines: string[] = [];
  for (const write of writes) {
    for (const { at, line } of write.lines) {
      ids.push(write.id);
      attempts.push(write.attempt);
      ats.push(at);
      lines.push(line);
    }
  }
  return sql.unsafe(
    `INSERT INTO apalis_task_logs (task_id, attempt, at, line)
     SELECT l.id, l.attempt, l.at, l.line
     FROM unnest($1::text[], $2::int[], $3::bigint[], $4::text[]) WITH ORDINALITY
       AS l(id, attempt, at, line, ord)
     JOIN apalis_tasks AS t ON t.id = l.id
     WHERE t.status = 'running' AND t.lock_by = $5 AND t.attempts = l.attempt
     ORDER BY l.ord`,
    [ids, attempts, ats, lines, worker] as Param,
    { prepare: false },
  );
}

/** Reads a task's log lines, oldest first (see `LogFilter`). */
export async function readLogs(sql: Executor, id: string, filter: LogFilter): Promise<LogRow[]> {
  const params: Param[] = [id, filter.after ?? 0, filter.limit];
  let where = "task_id = $1 AND seq > $2";
  if (filter.attempt !== undefined) {
    params.push(filter.attempt);
    where += " AND attempt = $4";
  }
  let rows: LogRow[];
  try {
    rows = await sql.unsafe<LogRow[]>(
      `SELECT seq, task_id, attempt, at, line FROM apalis_task_logs
       WHERE ${where} ORDER BY seq ${filter.last ? "DESC" : ""} LIMIT $3`,
      params,
    );
  } catch (error) {
    // 42P01 (undefined_table): a schema from before the logs (migration 8) has none.
    if ((error as { code?: unknown } | null)?.code === "42P01") return [];
    throw error;
  }
  const plain = rows.map((row) => ({ ...row }));
  return filter.last ? plain.reverse() : plain;
}
