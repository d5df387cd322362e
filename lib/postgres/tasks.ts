/**
 * The tasks' statements on PostgreSQL. Each one takes the executor it runs on (the pool, a
 * transaction or a savepoint), so that the same statement serves an operation of its own and a
 * part of a bigger transaction. Batches travel as arrays (`unnest`): one statement and one
 * parameter per column, whatever the count. `now` is the caller's clock, or NULL for the
 * database's time (`apalis_now()`: the transaction's start, in epoch ms).
 *
 * @module
 */
import type { ISql, PendingQuery, Row } from "postgres";
import type { ClaimedRow, NewTaskRow, TaskAck, TaskStatus } from "../backend/types.ts";

/** Anything that runs statements: the pool, a transaction, a savepoint. */
export type Executor = ISql;

const utf8 = new TextEncoder();

/** Bytes of a payload or result: a text codec's text is stored as its UTF-8 bytes. */
export function bytesOf(value: Uint8Array | string): Uint8Array;
export function bytesOf(value: Uint8Array | string | null): Uint8Array | null;
export function bytesOf(value: Uint8Array | string | null): Uint8Array | null {
  return typeof value === "string" ? utf8.encode(value) : value;
}

// deno-lint-ignore no-explicit-any
type Param = any;

/** The time of a statement: the caller's, or the database's. */
export function nowParam(now: number | undefined): number | null {
  return now ?? null;
}

/**
 * Inserts tasks with one statement and notifies their queues (at commit). A row with
 * `runAfterMs` falls due that long after the database's time, and is created at it. A run's
 * tasks are numbered after the run's last one, in the order given. A row with `unique` records
 * its key in `unique_key` (claim the key first: {@linkcode claimUniqueKey}). Fails with 23505 on
 * a duplicate id, writing nothing.
 */
export function insertTasks(sql: Executor, rows: readonly NewTaskRow[]): PendingQuery<Row[]> {
  const n = rows.length;
  const ids = new Array<string>(n);
  const queues = new Array<string>(n);
  const args = new Array<Uint8Array>(n);
  const maxAttempts = new Array<number>(n);
  const priorities = new Array<number>(n);
  const runAts = new Array<number>(n);
  const createdAts = new Array<number>(n);
  const after = new Array<number | null>(n);
  const metas = new Array<string | null>(n);
  const backoffs = new Array<string | null>(n);
  const runIds = new Array<string | null>(n);
  const steps = new Array<string | null>(n);
  const distinctQueues = new Set<string>();
  for (let i = 0; i < n; i++) {
    const row = rows[i]!;
    ids[i] = row.id;
    queues[i] = row.queue;
    distinctQueues.add(row.queue);
    args[i] = bytesOf(row.args);
    maxAttempts[i] = row.maxAttempts;
    priorities[i] = row.priority;
    runAts[i] = row.runAt;
    createdAts[i] = row.createdAt;
    after[i] = row.runAfterMs ?? null;
    metas[i] = row.meta;
    backoffs[i] = row.backoff;
    runIds[i] = row.runId ?? null;
    steps[i] = row.step ?? null;
  }
  const hasRuns = runIds.some((id) => id !== null);
  // Only a unique push names the column: a plain one binds what it did before.
  const hasUnique = rows.some((row) => row.unique !== undefined);
  const uniqueKeys = hasUnique
    ? sql`, ${rows.map((row) => row.unique?.key ?? null) as Param}::text[]`
    : sql``;
  const uniqueColumn = hasUnique ? sql`, unique_key` : sql``;
  // Likewise the group: most pushes have none, and bind no array of NULLs for it.
  const hasGroups = rows.some((row) => (row.groupKey ?? null) !== null);
  const groups = hasGroups
    ? sql`, ${rows.map((row) => row.groupKey ?? null) as Param}::text[]`
    : sql``;
  const groupColumn = hasGroups ? sql`, group_key` : sql``;
  const runSeq = hasRuns
    ? sql`CASE WHEN r.run_id IS NULL THEN NULL ELSE
        (SELECT coalesce(max(t.run_seq), 0) FROM apalis_tasks AS t WHERE t.run_id = r.run_id)
        + r.ord END`
    : sql`NULL::bigint`;
  return sql`
    WITH added AS (
      INSERT INTO apalis_tasks (id, queue, args, max_attempts, priority, run_at, created_at, meta,
        backoff, run_id, step, run_seq${groupColumn}${uniqueColumn})
      SELECT r.id, r.queue, r.args, r.max_attempts, r.priority,
        CASE WHEN r.after IS NULL THEN r.run_at ELSE apalis_now() + r.after END,
        CASE WHEN r.after IS NULL THEN r.created_at ELSE apalis_now() END,
        r.meta, r.backoff, r.run_id, r.step, ${runSeq}${groupColumn}${uniqueColumn}
      FROM unnest(${ids as Param}::text[], ${queues as Param}::text[], ${args as Param}::bytea[],
        ${maxAttempts as Param}::bigint[], ${priorities as Param}::bigint[],
        ${runAts as Param}::bigint[], ${createdAts as Param}::bigint[], ${after as Param}::bigint[],
        ${metas as Param}::text[], ${backoffs as Param}::text[], ${runIds as Param}::text[],
        ${steps as Param}::text[]${groups}${uniqueKeys})
        WITH ORDINALITY AS r(id, queue, args, max_attempts, priority, run_at, created_at, after,
          meta, backoff, run_id, step${groupColumn}${uniqueColumn}, ord)
      RETURNING 1
    )
    SELECT apalis_notify(q) FROM unnest(${[...distinctQueues] as Param}::text[]) AS q
    WHERE EXISTS (SELECT 1 FROM added)`;
}

/**
 * Claims the unique key of `row` (its `unique` set) in the caller's transaction: resolves to
 * null when the row now holds it (insert it next, in the same transaction), or to the id of the
 * task that holds it and blocks (see `apalis_unique_claim` in schema.ts).
 */
export async function claimUniqueKey(sql: Executor, row: NewTaskRow): Promise<string | null> {
  const unique = row.unique!;
  const [claim] = await sql<{ holder: string | null }[]>`
    SELECT apalis_unique_claim(${row.queue}, ${unique.key}, ${row.id},
      ${nowParam(unique.now)}::bigint, ${unique.periodMs}::bigint,
      ${unique.states as Param}::text[]) AS holder`;
  return claim?.holder ?? null;
}

/**
 * Records outcomes of attempts with one statement, fenced by attempt (a task still `running`
 * under `worker` in that attempt), and adds them to the outcome counts. `inRun` names `step` so
 * that the workflow trigger fires. Returns the ids it recorded.
 */
export function ackTasks(
  sql: Executor,
  acks: readonly TaskAck[],
  worker: string,
  now: number | undefined,
  inRun: boolean,
): PendingQuery<{ id: string }[]> {
  const n = acks.length;
  const ids = new Array<string>(n);
  const attempts = new Array<number>(n);
  const statuses = new Array<string>(n);
  const results = new Array<Uint8Array | null>(n);
  const errors = new Array<string | null>(n);
  const retryIn = new Array<number | null>(n);
  const doneAts = new Array<number | null>(n);
  for (let i = 0; i < n; i++) {
    const ack = acks[i]!;
    ids[i] = ack.id;
    attempts[i] = ack.attempt;
    statuses[i] = ack.status;
    results[i] = bytesOf(ack.result);
    errors[i] = ack.error;
    retryIn[i] = ack.retryInMs === null ? null : Math.max(0, Math.round(ack.retryInMs));
    // With the worker's clock, the finish time is the worker's; otherwise the database's.
    doneAts[i] = now === undefined ? null : ack.doneAt;
  }
  // Not prepared: a generic plan, from statistics of a moment when few tasks were held, joined
  // every ack with every held task (3 ms for 100 acks); planned with its values, by id (1 ms).
  return sql.unsafe(inRun ? ACK_IN_RUN_SQL : ACK_SQL, [
    ids,
    attempts,
    statuses,
    results,
    errors,
    retryIn,
    doneAts,
    worker,
  ] as Param, { prepare: false });
}

function ackSql(inRun: boolean): string {
  return `
    WITH a AS (
      SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bytea[], $5::text[],
        $6::bigint[], $7::bigint[]) AS a(id, attempt, status, result, error, retry_in, done_at)
    ), recorded AS (
      UPDATE apalis_tasks AS t SET status = a.status, last_result = a.result,
        last_error = a.error,
        run_at = CASE WHEN a.retry_in IS NULL THEN t.run_at
                      ELSE coalesce(a.done_at, apalis_now()) + a.retry_in END,
        done_at = coalesce(a.done_at, apalis_now())${inRun ? ", step = t.step" : ""}
      FROM a
      WHERE t.id = a.id AND t.status = 'running' AND t.lock_by = $8 AND t.attempts = a.attempt
      RETURNING t.id, t.queue, t.status, t.done_at
    ), counted AS (
      ${COUNT_OUTCOMES_SQL("recorded")}
    )
    SELECT id FROM recorded`;
}

/**
 * The INSERT that adds the outcomes among the rows of CTE `rows` (queue, status, done_at) to
 * this connection's counter row of each queue and minute.
 */
function COUNT_OUTCOMES_SQL(rows: string): string {
  return `
    INSERT INTO apalis_throughput AS c (queue, minute, shard, done, failed, killed)
    SELECT queue, done_at - done_at % 60000, apalis_shard(),
      count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE status = 'failed'),
      count(*) FILTER (WHERE status = 'killed')
    FROM ${rows}
    WHERE done_at IS NOT NULL AND status IN ('done','failed','killed')
    GROUP BY queue, done_at - done_at % 60000
    ON CONFLICT (queue, minute, shard) DO UPDATE SET done = c.done + excluded.done,
      failed = c.failed + excluded.failed, killed = c.killed + excluded.killed`;
}

/**
 * Adds the attempts a worker started (see `FlushRequest.started`) to this connection's counter
 * row of the queue and the flush's minute (the worker's clock, else the database's).
 */
export function countStarted(
  sql: Executor,
  queue: string,
  count: number,
  now: number | undefined,
): PendingQuery<Row[]> {
  return sql`
    INSERT INTO apalis_throughput AS c (queue, minute, shard, started)
    SELECT ${queue}, t.at - t.at % 60000, apalis_shard(), ${count}::bigint
    FROM (SELECT coalesce(${now ?? null}::bigint, apalis_now()) AS at) AS t
    ON CONFLICT (queue, minute, shard) DO UPDATE SET started = c.started + excluded.started`;
}

const ACK_SQL = ackSql(false);
const ACK_IN_RUN_SQL = ackSql(true);

/**
 * The INSERT that adds the outcomes among the rows of CTE `rows` (queue, status, done_at) to
 * this connection's counter row of each queue and minute.
 */
export function countOutcomes(
  sql: Executor,
  rows: "recorded" | "rescued" | "killed",
): PendingQuery<Row[]> {
  return sql.unsafe(COUNT_OUTCOMES_SQL(rows)) as unknown as PendingQuery<Row[]>;
}

/** The columns a claim returns, as {@linkcode ClaimedRow}s (sorted in claim order). */
export interface ClaimRow {
  kind: number;
  id: string | null;
  args: Uint8Array | null;
  attempts: number;
  max_attempts: number;
  priority: number;
  run_at: number | null;
  meta: string | null;
  backoff: string | null;
  run_id: string | null;
  step: string | null;
  short: boolean | null;
  next_due: number | null;
  now: number;
}

/**
 * Claims due tasks of `queue` into `running` under `worker`: `direct` of them, then `ahead`
 * more (never a last attempt) if it got them all (see `apalis_claim` in schema.ts).
 */
export function claimTasks(
  sql: Executor,
  claim: { queue: string; worker: string; now: number | undefined; direct: number; ahead: number },
): PendingQuery<ClaimRow[]> {
  return sql`
    SELECT c.*, n.now FROM (SELECT coalesce(${nowParam(claim.now)}::bigint, apalis_now()) AS now)
      AS n, apalis_claim(${claim.queue}, ${claim.worker}, n.now, ${claim.direct}::integer,
        ${claim.ahead}::integer) AS c`;
}

/** Splits a claim's rows: direct and ahead, each in claim order, and its summary. */
export function claimedRows(rows: readonly ClaimRow[], queue: string): {
  running: ClaimedRow[];
  ahead: ClaimedRow[];
  now: number;
  nextDueInMs: number | null | undefined;
  flow: "paused" | "limited" | undefined;
} {
  const running: ClaimedRow[] = [];
  const ahead: ClaimedRow[] = [];
  let now = 0;
  let nextDueInMs: number | null | undefined;
  let flow: "paused" | "limited" | undefined;
  for (const row of rows) {
    now = row.now;
    // The summary: kind 2 for a plain queue, 3 for a limited one, 4 for a paused one.
    if (row.kind >= 2) {
      if (row.short) nextDueInMs = row.next_due === null ? null : row.next_due - row.now;
      if (row.kind === 3) flow = "limited";
      else if (row.kind === 4) flow = "paused";
      continue;
    }
    const claimed: ClaimedRow = {
      id: row.id!,
      queue,
      status: "running",
      args: plainBytes(row.args!),
      attempts: row.attempts,
      max_attempts: row.max_attempts,
      priority: row.priority,
      run_at: row.run_at!,
      lock_at: row.now,
      meta: row.meta,
      backoff: row.backoff,
      run_id: row.run_id,
      step: row.step,
    };
    (row.kind === 0 ? running : ahead).push(claimed);
  }
  running.sort(compareClaimOrder);
  ahead.sort(compareClaimOrder);
  return { running, ahead, now, nextDueInMs, flow };
}

/** Claim order: higher priority first, then earlier `run_at`, then id. */
function compareClaimOrder(a: ClaimedRow, b: ClaimedRow): number {
  return b.priority - a.priority || a.run_at - b.run_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** Returns tasks claimed ahead that never started to `pending`, giving their attempt back. */
export function releaseAhead(
  sql: Executor,
  worker: string,
  tasks: readonly { id: string; attempts: number }[],
): PendingQuery<Row[]> {
  return sql`
    UPDATE apalis_tasks AS t SET status = 'pending', attempts = t.attempts - 1, lock_by = NULL,
      lock_at = NULL
    FROM unnest(${tasks.map((task) => task.id) as Param}::text[],
      ${tasks.map((task) => task.attempts) as Param}::bigint[]) AS r(id, attempts)
    WHERE t.id = r.id AND t.status = 'running' AND t.lock_by = ${worker}
      AND t.attempts = r.attempts`;
}

/**
 * Returns to `pending`, giving their attempt back, the tasks `running` under `worker` that are
 * not among `held` (those it was handed): claims of a flush whose commit went unanswered, which
 * never reached the worker.
 */
export function releaseUnknown(
  sql: Executor,
  worker: string,
  held: ReadonlySet<string>,
): PendingQuery<Row[]> {
  return sql`
    UPDATE apalis_tasks SET status = 'pending', attempts = attempts - 1, lock_by = NULL,
      lock_at = NULL
    WHERE status IN ('queued','running') AND status = 'running' AND lock_by = ${worker}
      AND NOT (id = ANY(${[...held] as Param}::text[]))`;
}

/** Returns a worker's buffered (`queued`) tasks to `pending`. */
export function releaseQueued(sql: Executor, worker: string): PendingQuery<Row[]> {
  return sql`
    UPDATE apalis_tasks SET status = 'pending', lock_by = NULL, lock_at = NULL
    WHERE status IN ('queued','running') AND status = 'queued' AND lock_by = ${worker}`;
}

/** Starts buffered tasks; returns the ids that were still the worker's. */
export function startQueued(
  sql: Executor,
  ids: readonly string[],
  worker: string,
  now: number | undefined,
): PendingQuery<{ id: string }[]> {
  return sql`
    UPDATE apalis_tasks SET status = 'running', attempts = attempts + 1,
      lock_at = coalesce(${nowParam(now)}::bigint, apalis_now())
    WHERE id = ANY(${ids as Param}::text[]) AND status = 'queued' AND lock_by = ${worker}
    RETURNING id`;
}

const LOST_ERROR = JSON.stringify({
  name: "WorkerLostError",
  message: "The worker running this task died or stopped heart-beating before it finished",
});

/**
 * Returns orphaned tasks to `pending` (a `running` one on its last attempt is `killed`), counts
 * the kills, fires the workflow trigger and wakes their queues. `holder`: only those this worker
 * name holds; otherwise those no live (not stopped) registered worker holds. Returns how many.
 */
export function rescueTasks(
  sql: Executor,
  now: number | undefined,
  holder?: string,
): PendingQuery<{ n: number }[]> {
  const which = holder === undefined
    ? sql`(lock_by IS NULL
           OR lock_by NOT IN (SELECT name FROM apalis_workers WHERE stopped_at IS NULL))`
    : sql`lock_by = ${holder}`;
  return sql`
    WITH rescued AS (
      UPDATE apalis_tasks SET
        status = CASE WHEN status = 'running' AND attempts >= max_attempts
                      THEN 'killed' ELSE 'pending' END,
        last_error = CASE WHEN status = 'running' THEN ${LOST_ERROR} ELSE last_error END,
        done_at = CASE WHEN status = 'running' AND attempts >= max_attempts
                       THEN coalesce(${nowParam(now)}::bigint, apalis_now()) ELSE done_at END,
        lock_by = CASE WHEN status = 'running' AND attempts >= max_attempts
                       THEN lock_by ELSE NULL END,
        lock_at = NULL, step = step
      WHERE status IN ('queued','running') AND ${which}
      RETURNING queue, status, done_at
    ), counted AS (
      ${countOutcomes(sql, "rescued")}
    ), woken AS (
      SELECT apalis_notify(queue) FROM (SELECT DISTINCT queue FROM rescued
                                        WHERE status = 'pending') AS q
    )
    SELECT (SELECT count(*) FROM rescued) AS n, (SELECT count(*) FROM woken) AS w`;
}

/** Whether a status is one of the queue's. */
export function isStatus(value: string): value is TaskStatus {
  return ["pending", "queued", "running", "done", "failed", "killed"].includes(value);
}

/**
 * Bytes as a plain `Uint8Array`: the client reads `bytea` as Node's `Buffer`, a subclass that a
 * codec would hand on (MessagePack's binary values are views of its input). A view, not a copy.
 */
export function plainBytes(bytes: Uint8Array): Uint8Array;
export function plainBytes(bytes: Uint8Array | null): Uint8Array | null;
export function plainBytes(bytes: Uint8Array | null): Uint8Array | null {
  if (bytes === null || Object.getPrototypeOf(bytes) === Uint8Array.prototype) return bytes;
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A row read from the database with its byte columns as plain `Uint8Array`s. */
export function plainRow<T extends { args?: Uint8Array; last_result?: Uint8Array | null }>(
  row: T,
): T {
  if (row.args) row.args = plainBytes(row.args);
  if (row.last_result) row.last_result = plainBytes(row.last_result);
  return row;
}
