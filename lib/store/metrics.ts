/**
 * The reads behind Prometheus metrics on SQLite: outcome counts that never decrease, and run
 * and wait times of recent tasks bucketed in SQL.
 *
 * @module
 */
import type { DurationsRow, OutcomeTotalRow } from "../backend/types.ts";
import type { Database } from "../sqlite/types.ts";
import { IS_FINISHED } from "./tasks.ts";

/**
 * Outcomes per queue since the database was set up: the minutes kept in `apalis_throughput`
 * plus those folded into `apalis_outcome_totals` when they were deleted. One statement, so one
 * snapshot: a vacuum that moves minutes from one table to the other is seen whole or not at all.
 * A schema from before the started count (read without upgrading it) counts every ended attempt
 * as started, as its upgrade does.
 */
export function outcomeTotals(db: Database): OutcomeTotalRow[] {
  try {
    return db.all<OutcomeTotalRow>(outcomeTotalsSql("started"));
  } catch (error) {
    if (!/no such column: started/.test(String((error as Error)?.message))) throw error;
    return db.all<OutcomeTotalRow>(outcomeTotalsSql("done + failed + killed"));
  }
}

function outcomeTotalsSql(started: string): string {
  return `SELECT queue, sum(started) AS started, sum(done) AS done, sum(failed) AS failed,
       sum(killed) AS killed FROM (
       SELECT queue, ${started} AS started, done, failed, killed FROM apalis_throughput
       UNION ALL SELECT queue, ${started} AS started, done, failed, killed
       FROM apalis_outcome_totals
     ) GROUP BY queue ORDER BY queue`;
}

/**
 * Run and wait times of each queue's `sample` newest done tasks, in cumulative buckets. Each
 * queue reads one backward range of the finished-tasks index (queue, status, id) and the rows it
 * names; the bounds are whole milliseconds, written into the statement as numbers.
 */
export function taskDurations(
  db: Database,
  queues: readonly string[],
  sample: number,
  boundsMs: readonly number[],
): DurationsRow[] {
  const sql = durationsSql(boundsMs);
  // A statement per queue, each its own read (no transaction: that would take the write lock).
  const rows: DurationsRow[] = [];
  for (const queue of queues) {
    const row = db.get<Record<string, number>>(sql, [queue, sample]);
    if (!row || row.n === 0) continue;
    rows.push({
      queue,
      n: row.n!,
      run_sum: row.run_sum!,
      wait_sum: row.wait_sum!,
      run_buckets: boundsMs.map((_, i) => row[`r${i}`]!),
      wait_buckets: boundsMs.map((_, i) => row[`w${i}`]!),
    });
  }
  return rows;
}

const statements = new Map<string, string>();

function durationsSql(boundsMs: readonly number[]): string {
  const key = boundsMs.join(",");
  let sql = statements.get(key);
  if (sql === undefined) {
    for (const bound of boundsMs) {
      if (!Number.isSafeInteger(bound) || bound < 0) {
        throw new RangeError(
          `A bucket bound must be an integer >= 0 (ms): current value is ${bound}`,
        );
      }
    }
    const buckets = boundsMs.flatMap((bound, i) => [
      `coalesce(sum(run <= ${bound}), 0) AS r${i}`,
      `coalesce(sum(wait <= ${bound}), 0) AS w${i}`,
    ]);
    sql = `SELECT count(*) AS n, coalesce(sum(run), 0) AS run_sum,
             coalesce(sum(wait), 0) AS wait_sum${buckets.map((b) => `, ${b}`).join("")}
           FROM (SELECT max(done_at - lock_at, 0) AS run, max(lock_at - run_at, 0) AS wait
                 FROM apalis_tasks
                 WHERE ${IS_FINISHED} AND queue = ?1 AND status = 'done'
                 ORDER BY id DESC LIMIT ?2)
           WHERE run IS NOT NULL AND wait IS NOT NULL`;
    statements.set(key, sql);
  }
  return sql;
}
