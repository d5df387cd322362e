import type { Database } from "../sqlite/types.ts";

export type { WorkerRow } from "../backend/types.ts";
import type { WorkerRow } from "../backend/types.ts";

/** Reads one worker by name. */
export function workerGet(db: Database, name: string): WorkerRow | undefined {
  return db.get<WorkerRow>("SELECT * FROM apalis_workers WHERE name = ?", [name]);
}

/** Inserts or takes over a worker name. */
export function workerUpsert(db: Database, row: WorkerRow): void {
  db.run(
    `INSERT INTO apalis_workers
       (name, queue, instance_id, host, pid, started_at, last_seen, stopped_at, concurrency)
     VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)
     ON CONFLICT (name) DO UPDATE SET queue = excluded.queue, instance_id = excluded.instance_id,
       host = excluded.host, pid = excluded.pid, started_at = excluded.started_at,
       last_seen = excluded.last_seen, stopped_at = NULL, concurrency = excluded.concurrency`,
    [
      row.name,
      row.queue,
      row.instance_id,
      row.host,
      row.pid,
      row.started_at,
      row.last_seen,
      row.concurrency,
    ],
  );
}

/** Refreshes a worker's heartbeat; false when another instance has taken the name over. */
export function workerHeartbeat(
  db: Database,
  name: string,
  instanceId: string,
  now: number,
): boolean {
  return db.run(
    `UPDATE apalis_workers SET last_seen = ?
     WHERE name = ? AND instance_id = ? AND stopped_at IS NULL`,
    [now, name, instanceId],
  ).changes === 1;
}

/** Marks a worker instance as stopped (it no longer holds any task). */
export function workerStop(db: Database, name: string, instanceId: string, now: number): boolean {
  return db.run(
    `UPDATE apalis_workers SET stopped_at = ?, last_seen = max(last_seen, ?)
     WHERE name = ? AND instance_id = ? AND stopped_at IS NULL`,
    [now, now, name, instanceId],
  ).changes === 1;
}

/** Lists workers, most recently seen first. */
export function workerList(db: Database, queue?: string): WorkerRow[] {
  if (queue !== undefined) {
    return db.all<WorkerRow>(
      "SELECT * FROM apalis_workers WHERE queue = ? ORDER BY last_seen DESC, name",
      [queue],
    );
  }
  return db.all<WorkerRow>("SELECT * FROM apalis_workers ORDER BY last_seen DESC, name");
}

/** Workers that have not stopped, other than `except`. */
export function workerListRunning(db: Database, except: string): WorkerRow[] {
  return db.all<WorkerRow>(
    "SELECT * FROM apalis_workers WHERE stopped_at IS NULL AND name != ?",
    [except],
  );
}
