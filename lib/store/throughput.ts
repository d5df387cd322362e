import type { Database } from "../sqlite/types.ts";

/** Outcomes recorded in one minute for one queue (kept by the trigger `apalis_count_outcome`). */
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
