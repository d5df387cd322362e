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

/** Outcomes of one queue in one minute, to add to its counts. */
interface MinuteCounts {
  queue: string;
  minute: number;
  done: number;
  failed: number;
  killed: number;
}

/**
 * Counts the outcomes among rows an UPDATE … RETURNING queue, status, done_at wrote (rows that
 * did not end an attempt are skipped), one upsert per queue and minute; call in the recording
 * transaction.
 */
export function throughputAddRows(
  db: Database,
  rows: readonly { queue: string; status: string; done_at: number | null }[],
): void {
  const byMinute = new Map<string, MinuteCounts>();
  for (const row of rows) {
    if (row.done_at === null) continue;
    if (row.status !== "done" && row.status !== "failed" && row.status !== "killed") continue;
    const minute = row.done_at - (row.done_at % 60_000);
    const key = `${minute}\u0000${row.queue}`;
    let entry = byMinute.get(key);
    if (!entry) {
      entry = { queue: row.queue, minute, done: 0, failed: 0, killed: 0 };
      byMinute.set(key, entry);
    }
    entry[row.status]++;
  }
  for (const { queue, minute, done, failed, killed } of byMinute.values()) {
    db.run(
      `INSERT INTO apalis_throughput (queue, minute, done, failed, killed) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (queue, minute) DO UPDATE SET done = done + excluded.done,
         failed = failed + excluded.failed, killed = killed + excluded.killed`,
      [queue, minute, done, failed, killed],
    );
  }
}
