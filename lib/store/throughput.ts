import type { Database } from "../sqlite/types.ts";

/** Outcomes recorded in one minute for one queue (counted by the statements that record them). */
export interface ThroughputRow {
  queue: string;
  /** Epoch ms at the start of the minute. */
  minute: number;
  done: number;
  failed: number;
  killed: number;
}

/** Minutes at or after `since`, oldest first, for one queue or all. */
export function throughputSince(db: Database, since: number, queue?: string): ThroughputRow[] {
  return db.all<ThroughputRow>(
    `SELECT queue, minute, done, failed, killed FROM apalis_throughput
     WHERE minute >= ?1 AND (?2 IS NULL OR queue = ?2) ORDER BY minute, queue`,
    [since - (since % 60_000), queue ?? null],
  );
}

/** Forgets the minutes that started before `before`. */
export function throughputPrune(db: Database, before: number): number {
  return db.run("DELETE FROM apalis_throughput WHERE minute + 60000 <= ?", [before]).changes;
}

/** Outcome counts to add to one queue's minute. */
export interface OutcomeCounts {
  done?: number;
  failed?: number;
  killed?: number;
}

/** Adds outcomes recorded at `at` to their queue's minute; call in the recording transaction. */
export function throughputAdd(
  db: Database,
  queue: string,
  at: number,
  counts: OutcomeCounts,
): void {
  const done = counts.done ?? 0;
  const failed = counts.failed ?? 0;
  const killed = counts.killed ?? 0;
  if (done + failed + killed === 0) return;
  db.run(
    `INSERT INTO apalis_throughput (queue, minute, done, failed, killed) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (queue, minute) DO UPDATE SET done = done + excluded.done,
       failed = failed + excluded.failed, killed = killed + excluded.killed`,
    [queue, at - (at % 60_000), done, failed, killed],
  );
}

/** Counts the outcomes among rows an UPDATE … RETURNING queue, status, done_at wrote. */
export function throughputAddRows(
  db: Database,
  rows: readonly { queue: string; status: string; done_at: number | null }[],
): void {
  const byMinute = new Map<
    string,
    { queue: string; at: number; counts: Required<OutcomeCounts> }
  >();
  for (const row of rows) {
    if (row.done_at === null) continue;
    if (row.status !== "done" && row.status !== "failed" && row.status !== "killed") continue;
    const minute = row.done_at - (row.done_at % 60_000);
    const key = `${minute}\u0000${row.queue}`;
    let entry = byMinute.get(key);
    if (!entry) {
      entry = { queue: row.queue, at: minute, counts: { done: 0, failed: 0, killed: 0 } };
      byMinute.set(key, entry);
    }
    entry.counts[row.status]++;
  }
  for (const entry of byMinute.values()) throughputAdd(db, entry.queue, entry.at, entry.counts);
}
