/**
 * The reads behind Prometheus metrics on PostgreSQL: outcome counts that never decrease, and run
 * and wait times of recent tasks bucketed in SQL (SQLite's are in lib/store/metrics.ts).
 *
 * @module
 */
import type { Sql } from "postgres";
import type { DurationsRow, OutcomeTotalRow } from "../backend/types.ts";

/**
 * Outcomes per queue since the database was set up: the minutes kept in `apalis_throughput` (16
 * shards each) plus those folded into `apalis_outcome_totals` when they were deleted. One
 * statement, so one snapshot: a vacuum's move from one table to the other is seen whole or not.
 * The minutes are summed before the union: over a week of minutes (161,280 rows) the planner
 * otherwise chose a parallel plan that took twice as long. A schema from before the started
 * count (read without upgrading it) counts every ended attempt as started, as its upgrade does.
 */
export async function outcomeTotals(sql: Sql): Promise<OutcomeTotalRow[]> {
  try {
    return await sql.unsafe<OutcomeTotalRow[]>(outcomeTotalsSql("started"));
  } catch (error) {
    // 42703: undefined_column.
    if ((error as { code?: string })?.code !== "42703") throw error;
    return await sql.unsafe<OutcomeTotalRow[]>(outcomeTotalsSql("done + failed + killed"));
  }
}

function outcomeTotalsSql(started: string): string {
  return `
    SELECT queue, sum(started)::bigint AS started, sum(done)::bigint AS done,
      sum(failed)::bigint AS failed, sum(killed)::bigint AS killed
    FROM (SELECT queue, sum(${started}) AS started, sum(done) AS done, sum(failed) AS failed,
            sum(killed) AS killed
          FROM apalis_throughput GROUP BY queue
          UNION ALL SELECT queue, ${started} AS started, done, failed, killed
          FROM apalis_outcome_totals) AS o
    GROUP BY queue ORDER BY queue`;
}

/**
 * Run and wait times of each queue's `sample` newest done tasks, in cumulative buckets: one
 * statement, a backward range of the finished-tasks index (queue, status, id) per queue.
 */
export async function taskDurations(
  sql: Sql,
  queues: readonly string[],
  sample: number,
  boundsMs: readonly number[],
): Promise<DurationsRow[]> {
  if (queues.length === 0) return [];
  const rows = await sql.unsafe<Record<string, number | string>[]>(durationsSql(boundsMs), [
    queues as string[],
    sample,
  ]);
  return rows.map((row) => ({
    queue: row.queue as string,
    n: row.n as number,
    run_sum: row.run_sum as number,
    wait_sum: row.wait_sum as number,
    run_buckets: boundsMs.map((_, i) => row[`r${i}`] as number),
    wait_buckets: boundsMs.map((_, i) => row[`w${i}`] as number),
  }));
}

const statements = new Map<string, string>();

function durationsSql(boundsMs: readonly number[]): string {
  const key = boundsMs.join(",");
  let text = statements.get(key);
  if (text === undefined) {
    for (const bound of boundsMs) {
      if (!Number.isSafeInteger(bound) || bound < 0) {
        throw new RangeError(
          `A bucket bound must be an integer >= 0 (ms): current value is ${bound}`,
        );
      }
    }
    const buckets = boundsMs.flatMap((bound, i) => [
      `count(*) FILTER (WHERE s.run <= ${bound}) AS r${i}`,
      `count(*) FILTER (WHERE s.wait <= ${bound}) AS w${i}`,
    ]);
    text = `
      SELECT q.queue, count(*) AS n, coalesce(sum(s.run), 0)::bigint AS run_sum,
        coalesce(sum(s.wait), 0)::bigint AS wait_sum${buckets.map((b) => `, ${b}`).join("")}
      FROM unnest($1::text[]) AS q(queue)
      CROSS JOIN LATERAL (
        SELECT greatest(t.done_at - t.lock_at, 0) AS run, greatest(t.lock_at - t.run_at, 0) AS wait
        FROM apalis_tasks AS t
        WHERE t.queue = q.queue COLLATE "C" AND t.status = 'done'
        ORDER BY t.id DESC LIMIT $2::integer
      ) AS s
      WHERE s.run IS NOT NULL AND s.wait IS NOT NULL
      GROUP BY q.queue ORDER BY q.queue`;
    statements.set(key, text);
  }
  return text;
}
