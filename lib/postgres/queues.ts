/**
 * Queue settings on PostgreSQL (`apalis_queues`): read them, and change pause and limits. A
 * change takes the queue's settings row FOR UPDATE (created first if missing), so that changes
 * and claims take turns; a row that restricts nothing is deleted. The change notifies the
 * queue's channel at commit, which wakes idle workers on every host (a resume, looser limits).
 * The claim that enforces them is `apalis_claim_limited` (flow_schema.ts).
 *
 * @module
 */
import type { Sql } from "postgres";
import type { QueueLimitsChange, QueueSettingsRow } from "../backend/types.ts";
import { nowParam } from "./tasks.ts";

const COLUMNS = "queue, paused, rate_limit::float8 AS rate_limit, " +
  "rate_per_ms::float8 AS rate_per_ms, concurrency::float8 AS concurrency, " +
  "group_concurrency::float8 AS group_concurrency, updated_at::float8 AS updated_at";

/** Every queue's settings, by queue name. */
export async function queueSettingsList(sql: Sql): Promise<QueueSettingsRow[]> {
  return await sql.unsafe<QueueSettingsRow[]>(
    `SELECT ${COLUMNS} FROM apalis_queues ORDER BY queue`,
  );
}

/** One queue's settings, or undefined. */
export async function queueSettingsGet(
  sql: Sql,
  queue: string,
): Promise<QueueSettingsRow | undefined> {
  const [row] = await sql.unsafe<QueueSettingsRow[]>(
    `SELECT ${COLUMNS} FROM apalis_queues WHERE queue = $1`,
    [queue],
  );
  return row;
}

/**
 * Changes a queue's settings in one transaction: `change` (limits; a new rate empties the
 * window) and `paused` when given. Returns the settings now stored.
 */
export async function queueChange(
  sql: Sql,
  queue: string,
  change: QueueLimitsChange & { paused?: boolean },
  now: number | undefined,
): Promise<QueueSettingsRow> {
  return await sql.begin(async (tx) => {
    await tx`
      INSERT INTO apalis_queues (queue, updated_at)
      VALUES (${queue}, coalesce(${nowParam(now)}::bigint, apalis_now()))
      ON CONFLICT (queue) DO NOTHING`;
    const [current] = await tx.unsafe<QueueSettingsRow[]>(
      `SELECT ${COLUMNS} FROM apalis_queues WHERE queue = $1 FOR UPDATE`,
      [queue],
    );
    const next = { ...current! };
    let resetWindow = false;
    if (change.paused !== undefined) next.paused = change.paused;
    if (change.rate !== undefined) {
      next.rate_limit = change.rate?.limit ?? null;
      next.rate_per_ms = change.rate?.perMs ?? null;
      resetWindow = next.rate_limit !== current!.rate_limit ||
        next.rate_per_ms !== current!.rate_per_ms;
    }
    if (change.concurrency !== undefined) next.concurrency = change.concurrency;
    if (change.groupConcurrency !== undefined) next.group_concurrency = change.groupConcurrency;
    const [row] = await tx.unsafe<QueueSettingsRow[]>(
      `UPDATE apalis_queues SET paused = $2, rate_limit = $3, rate_per_ms = $4,
         concurrency = $5, group_concurrency = $6,
         rate_buckets = CASE WHEN $7 THEN '{}' ELSE rate_buckets END,
         rate_counts = CASE WHEN $7 THEN '{}' ELSE rate_counts END,
         updated_at = coalesce($8::bigint, apalis_now())
       WHERE queue = $1
       RETURNING ${COLUMNS}`,
      [
        queue,
        next.paused,
        next.rate_limit,
        next.rate_per_ms,
        next.concurrency,
        next.group_concurrency,
        resetWindow,
        nowParam(now),
      ],
    );
    await tx`
      DELETE FROM apalis_queues WHERE queue = ${queue} AND NOT paused AND rate_limit IS NULL
        AND concurrency IS NULL AND group_concurrency IS NULL`;
    await tx`SELECT apalis_notify(${queue})`;
    return row!;
  });
}
