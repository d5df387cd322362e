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
  started: number;
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
    this.#entry(queue, doneAt)[status]++;
  }

  /** Counts attempts a worker started (see `FlushRequest.started`). */
  addStarted(queue: string, count: number, at: number): void {
    this.#entry(queue, at).started += count;
  }

  #entry(queue: string, at: number): MinuteCounts {
    const minute = at - (at % 60_000);
    let entry = this.#last;
    if (entry === undefined || entry.queue !== queue || entry.minute !== minute) {
      const key = `${minute}\u0000${queue}`;
      entry = this.#byMinute.get(key);
      if (entry === undefined) {
        entry = { queue, minute, started: 0, done: 0, failed: 0, killed: 0 };
        this.#byMinute.set(key, entry);
      }
      this.#last = entry;
    }
    return entry;
  }

  /** Adds the counts to `apalis_throughput`. */
  write(db: Database): void {
    for (const { queue, minute, started, done, failed, killed } of this.#byMinute.values()) {
      // Without starts, the column goes unnamed: repairs by hand (kill, retry) still write to a
      // file whose schema predates it.
      if (started === 0) db.run(ADD_OUTCOMES_SQL, [queue, minute, done, failed, killed]);
      else db.run(ADD_COUNTS_SQL, [queue, minute, done, failed, killed, started]);
    }
  }
}

const ADD_OUTCOMES_SQL = `INSERT INTO apalis_throughput (queue, minute, done, failed, killed)
  VALUES (?, ?, ?, ?, ?)
  ON CONFLICT (queue, minute) DO UPDATE SET done = done + excluded.done,
    failed = failed + excluded.failed, killed = killed + excluded.killed`;

const ADD_COUNTS_SQL = `INSERT INTO apalis_throughput (queue, minute, done, failed, killed, started)
  VALUES (?, ?, ?, ?, ?, ?)
  ON CONFLICT (queue, minute) DO UPDATE SET done = done + excluded.done,
    failed = failed + excluded.failed, killed = killed + excluded.killed,
    started = started + excluded.started`;

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
