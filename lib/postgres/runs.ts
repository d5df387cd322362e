/**
 * Workflow runs' statements on PostgreSQL, and a step's effects (see `RunEffect`) run inside
 * the ack's transaction. Every path that changes a run's bookkeeping first locks the run's row
 * (`lockRuns`, and the trigger `apalis_run_step`): concurrent transactions then record a join's
 * parts one after the other, and the one that records the last enqueues the continuation.
 *
 * @module
 */
import type { PendingQuery, Row } from "postgres";
import type { JoinPartRow, RunEffect } from "../backend/types.ts";
import { plainBytes } from "./tasks.ts";
import { ulid } from "../storage/ulid.ts";
import { type Executor, insertTasks } from "./tasks.ts";

// deno-lint-ignore no-explicit-any
type Param = any;

/**
 * Locks the rows of the runs that tasks `taskIds` belong to, in id order (so that two
 * transactions that ack steps of the same runs never wait on each other in a cycle).
 */
export function lockRunsOf(sql: Executor, taskIds: readonly string[]): PendingQuery<Row[]> {
  return sql`
    SELECT id FROM apalis_runs
    WHERE id IN (SELECT run_id FROM apalis_tasks WHERE id = ANY(${taskIds as Param}::text[]))
    ORDER BY id FOR UPDATE`;
}

/** Thrown values of a step's own code (a join's `combine`), told apart from the database's. */
export class EffectCodeError {
  /** @param error what the code threw */
  constructor(readonly error: unknown) {}
}

/**
 * Runs a step's effects inside the open transaction `sql`, in order (see `RunEffect`); `now` is
 * the transaction's time. What a `combine` throws is rethrown wrapped in an
 * {@linkcode EffectCodeError}. Returns the queues it enqueued to (already notified).
 */
export async function applyEffects(
  sql: Executor,
  runId: string,
  taskId: string,
  effects: readonly RunEffect[],
  now: number,
): Promise<void> {
  let backoff: string | null | undefined;
  const inherited = async () => {
    if (backoff === undefined) {
      const [row] = await sql<{ backoff: string | null }[]>`
        SELECT backoff FROM apalis_tasks WHERE id = ${taskId}`;
      backoff = row?.backoff ?? null;
    }
    return backoff;
  };
  const runStatus = async () => {
    const [row] = await sql<{ status: string }[]>`
      SELECT status FROM apalis_runs WHERE id = ${runId} FOR UPDATE`;
    return row?.status;
  };
  for (const effect of effects) {
    switch (effect.kind) {
      case "name":
        await sql`UPDATE apalis_runs SET workflow = ${effect.workflow}, graph = ${effect.graph}
                  WHERE id = ${runId} AND workflow IS NULL`;
        break;
      case "complete":
        await completeRun(sql, runId, effect.result, now);
        break;
      case "enqueue": {
        if (effect.tasks.length === 0 || await runStatus() !== "running") break;
        const stepBackoff = await inherited();
        await insertTasks(
          sql,
          effect.tasks.map((task) => ({
            id: task.id ?? ulid(now),
            queue: task.queue,
            args: task.args,
            maxAttempts: task.maxAttempts,
            priority: task.priority,
            runAt: now + Math.max(0, Math.round(task.delayMs)),
            createdAt: now,
            meta: task.meta,
            backoff: stepBackoff,
            runId,
            step: task.step,
          })),
        );
        break;
      }
      case "declare":
        if (await runStatus() === "running") {
          await declareJoin(sql, runId, effect.join, await inherited());
        }
        break;
      case "feed": {
        const { join } = effect;
        await declareJoin(sql, runId, join, await inherited());
        await addPart(sql, runId, join.key, effect.slot, effect.result);
        const parts = await joinParts(sql, runId, join.key);
        if (parts.length === join.expected) {
          let args: Uint8Array;
          try {
            args = effect.combine(parts.map((part) => part.result));
          } catch (error) {
            throw new EffectCodeError(error);
          }
          await enqueueIfComplete(sql, runId, join.key, now, args);
        }
        break;
      }
      case "finish": {
        await addPart(sql, runId, effect.key, effect.slot, effect.result);
        const parts = await joinParts(sql, runId, effect.key);
        if (parts.length === effect.expected && await runStatus() === "running") {
          let result: Uint8Array | null;
          try {
            result = effect.combine(parts.map((part) => part.result));
          } catch (error) {
            throw new EffectCodeError(error);
          }
          await completeRun(sql, runId, result, now);
        }
        break;
      }
    }
  }
}

function completeRun(sql: Executor, runId: string, result: Uint8Array | null, now: number) {
  return sql`UPDATE apalis_runs SET status = 'done', result = ${result as Param}::bytea,
               done_at = ${now}::bigint
             WHERE id = ${runId} AND status = 'running'`;
}

function declareJoin(
  sql: Executor,
  runId: string,
  join: Extract<RunEffect, { kind: "declare" }>["join"],
  backoff: string | null,
) {
  return sql`
    INSERT INTO apalis_joins (run_id, join_key, expected, task_id, queue, args, step, priority,
      max_attempts, meta, backoff)
    VALUES (${runId}, ${join.key}, ${join.expected}::bigint, ${join.taskId}, ${join.queue},
      ${join.args as Param}::bytea, ${join.step}, ${join.priority}::bigint,
      ${join.maxAttempts}::bigint, ${join.meta}, ${backoff})
    ON CONFLICT DO NOTHING`;
}

function addPart(
  sql: Executor,
  runId: string,
  key: string,
  slot: number,
  result: Uint8Array | null,
) {
  return sql`
    INSERT INTO apalis_join_parts (run_id, join_key, slot, status, result)
    VALUES (${runId}, ${key}, ${slot}::bigint, 'done', ${result as Param}::bytea)
    ON CONFLICT DO NOTHING`;
}

/** The parts of a join, by slot. */
export async function joinParts(
  sql: Executor,
  runId: string,
  key: string,
): Promise<JoinPartRow[]> {
  const parts = await sql<JoinPartRow[]>`
    SELECT slot, status, result, error FROM apalis_join_parts
    WHERE run_id = ${runId} AND join_key = ${key} ORDER BY slot`;
  for (const part of parts) part.result = plainBytes(part.result);
  return parts;
}

/** Enqueues a join's continuation once, if every part is in and the run is running. */
function enqueueIfComplete(
  sql: Executor,
  runId: string,
  key: string,
  now: number,
  args: Uint8Array,
) {
  return sql`
    WITH added AS (
      INSERT INTO apalis_tasks (id, queue, status, args, attempts, max_attempts, priority, run_at,
        created_at, meta, backoff, run_id, step, run_seq)
      SELECT j.task_id, j.queue, 'pending', ${args as Param}::bytea, 0, j.max_attempts,
        j.priority, ${now}::bigint, ${now}::bigint, j.meta, j.backoff, j.run_id, j.step,
        (SELECT coalesce(max(t.run_seq), 0) + 1 FROM apalis_tasks AS t WHERE t.run_id = j.run_id)
      FROM apalis_joins AS j
      WHERE j.run_id = ${runId} AND j.join_key = ${key}
        AND (SELECT count(*) FROM apalis_join_parts AS p
             WHERE p.run_id = j.run_id AND p.join_key = j.join_key) = j.expected
        AND (SELECT status FROM apalis_runs WHERE id = j.run_id) = 'running'
      ON CONFLICT DO NOTHING
      RETURNING queue
    )
    SELECT apalis_notify(queue) FROM added`;
}
