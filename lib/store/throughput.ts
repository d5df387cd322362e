import type { Database } from "../sqlite/types.ts";

export type { ThroughputRow } from "../backend/types.ts";
import type { ThroughputRow } from "../backend/types.ts";

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
 * Outcomes added up in memory per queue and minute, then written with one upsert each
 * ({@linkcode OutcomeCounts.write}, in the transaction that records them).
 */
export class OutcomeCounts {
  #byMinute = new Map<string, MinuteCounts>();
  // Consecutive outcomes mostly share their queue and minute: no key to build for those.
  #last: MinuteCounts | undefined;

  /** Counts one ended attempt. */
  add(queue: string, status: "done" | "failed" | "killed", doneAt: number): void {
    const minute = doneAt - (doneAt % 60_000);
    let entry = this.#last;
    if (entry === undefined || entry.queue !== queue || entry.minute !== minute) {
      const key = `${minute}\u0000${queue}`;
      entry = this.#byMinute.get(key);
      if (entry === undefined) {
        entry = { queue, minute, done: 0, failed: 0, killed: 0 };
        this.#byMinute.set(key, entry);
      }
      this.#last = entry;
    }
    entry[status]++;
  }

  /** Adds the counts to `apalis_throughput`. */
  write(db: Database): void {
    for (const { queue, minute, done, failed, killed } of this.#byMinute.values()) {
      db.run(
        `INSERT INTO apalis_throughput (queue, minute, done, failed, killed) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (queue, minute) DO UPDATE SET done = done + excluded.done,
           failed = failed + excluded.failed, killed = killed + excluded.killed`,
        [queue, minute, done, failed, killed],
      );
    }
  }
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
  const counts = new OutcomeCounts();
  for (const row of rows) {
    if (row.done_at === null) continue;
    if (row.status !== "done" && row.status !== "failed" && row.status !== "killed") continue;
    counts.add(row.queue, row.status, row.done_at);
  }
  counts.write(db);
}
