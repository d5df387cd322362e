import type { Database } from "../sqlite/types.ts";
import type { LogFilter, LogRow, LogWrite, ProgressWrite } from "../backend/types.ts";

/**
 * Writes running attempts' progress (one statement for all), each only while its attempt is the
 * task's current `running` one held by `worker`: a stale attempt's progress changes nothing.
 */
export function progressWriteMany(
  db: Database,
  worker: string,
  writes: readonly ProgressWrite[],
  now: number,
): void {
  db.run(
    `UPDATE apalis_tasks SET progress = j.value ->> 2, progress_attempt = attempts, progress_at = ?
     FROM json_each(?) AS j
     WHERE apalis_tasks.id = j.value ->> 0 AND apalis_tasks.status = 'running'
       AND apalis_tasks.lock_by = ? AND apalis_tasks.attempts = j.value ->> 1`,
    [now, JSON.stringify(writes.map((write) => [write.id, write.attempt, write.value])), worker],
  );
}

/** Appends running attempts' log lines in order (one statement for all), fenced like progress. */
export function logAppendMany(db: Database, worker: string, writes: readonly LogWrite[]): void {
  const lines: [string, number, number, string][] = [];
  for (const write of writes) {
    for (const { at, line } of write.lines) lines.push([write.id, write.attempt, at, line]);
  }
  db.run(
    `INSERT INTO apalis_task_logs (task_id, attempt, at, line)
     SELECT t.id, t.attempts, j.value ->> 2, j.value ->> 3
     FROM json_each(?) AS j JOIN apalis_tasks AS t ON t.id = j.value ->> 0
     WHERE t.status = 'running' AND t.lock_by = ? AND t.attempts = j.value ->> 1
     ORDER BY j.key`,
    [JSON.stringify(lines), worker],
  );
}

/**
 * Reads a task's log lines, oldest first (see `LogFilter`). A schema from before the logs
 * (migration 12; read without upgrading it, as the CLI and the board do) has none.
 */
export function taskLogs(db: Database, id: string, filter: LogFilter): LogRow[] {
  const where = ["task_id = ?", "seq > ?"];
  const params: (string | number)[] = [id, filter.after ?? 0];
  if (filter.attempt !== undefined) {
    where.push("attempt = ?");
    params.push(filter.attempt);
  }
  params.push(filter.limit);
  const select = `SELECT seq, task_id, attempt, at, line FROM apalis_task_logs
     WHERE ${where.join(" AND ")} ORDER BY seq ${filter.last ? "DESC" : ""} LIMIT ?`;
  let rows: LogRow[];
  try {
    rows = db.all<LogRow>(select, params);
  } catch (error) {
    // The connection reports a missing table as SchemaMissingError, with SQLite's error as cause.
    const text = `${String(error)} ${String((error as { cause?: unknown } | null)?.cause)}`;
    if (/no such table: apalis_task_logs/.test(text)) return [];
    throw error;
  }
  return filter.last ? rows.reverse() : rows;
}
