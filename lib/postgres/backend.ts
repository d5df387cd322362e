import type { PendingQuery, Row, TransactionSql } from "postgres";
import type {
  Backend,
  ClaimedRow,
  CountRow,
  DurationsRow,
  FlushAck,
  FlushRequest,
  FlushResult,
  HeldAttempt,
  InsertOutcome,
  JoinPartRow,
  ListedTaskRow,
  LogFilter,
  LogRow,
  LostAttemptRow,
  NewTaskRow,
  OutcomeTotalRow,
  QueueLimitsChange,
  QueueSettingsRow,
  RetentionStep,
  RetentionStepResult,
  RunListFilter,
  RunListRow,
  RunRow,
  ScheduleAdvance,
  ScheduleDue,
  ScheduleRow,
  ScheduleUpsert,
  TaskAck,
  TaskKill,
  TaskListFilter,
  TaskRow,
  TaskStatus,
  ThroughputRow,
  WorkerListRow,
  WorkerRegistration,
  WorkerRow,
} from "../backend/types.ts";
import { KillListeners } from "../backend/kills.ts";
import { KILL_CHANNEL, KillNotices } from "./kill_notices.ts";
import {
  codeOf,
  isServerError,
  type PostgresConnection,
  PostgresOperationError,
} from "./connection.ts";
import { applyEffects, EffectCodeError, joinParts, lockRunsOf } from "./runs.ts";
import {
  deleteRuns,
  queuesWithFinishedRuns,
  readExpiredRuns,
  retentionRelease,
  retentionStep,
} from "./retention.ts";
import {
  migratePostgres,
  POSTGRES_STARTED_COUNT_VERSION,
  postgresSchemaVersion,
} from "./schema.ts";
import { SchemaProbe } from "../backend/schema_probe.ts";
import { outcomeTotals, taskDurations } from "./metrics.ts";
import {
  scheduleAdvance,
  scheduleDelete,
  scheduleDue,
  scheduleList,
  scheduleUpsert,
} from "./schedules.ts";
import {
  ackTasks,
  claimedRows,
  type ClaimRow,
  claimTasks,
  claimUniqueKey,
  countOutcomes,
  countStarted,
  type Executor,
  insertTasks,
  nowParam,
  plainBytes,
  plainRow,
  releaseAhead,
  releaseQueued,
  releaseUnknown,
  rescueTasks,
  startQueued,
} from "./tasks.ts";
import { Wakeups } from "./wakeups.ts";
import { appendLogs, readLogs, writeProgress } from "./reports.ts";
import { queueChange, queueSettingsGet, queueSettingsList } from "./queues.ts";

/**
 * A read of the settings table, or `absent` on a database not yet upgraded to it (read by the
 * CLI or the board without setting up): such a database has no settings.
 */
async function withoutSettingsTable<T, A>(read: Promise<T>, absent: A): Promise<T | A> {
  try {
    return await read;
  } catch (error) {
    if (codeOf(error) === "42P01") return absent; // undefined_table
    throw error;
  }
}

// deno-lint-ignore no-explicit-any
type Param = any;

// One backend per connection: every storage on a connection shares its wake-ups.
const backends = new WeakMap<PostgresConnection, PostgresBackend>();

const TASK_COLUMNS = "id, queue, status, args, attempts, max_attempts, priority, run_at, " +
  "created_at, lock_by, lock_at, done_at, last_result, last_error, meta, backoff, run_id, step, " +
  "unique_key, group_key";
/** A task read by id: with the progress its handler reported. */
const READ_COLUMNS = `${TASK_COLUMNS}, progress, progress_attempt, progress_at`;

/**
 * The PostgreSQL backend: the queue's operations as PostgreSQL statements, each writing
 * operation in one transaction. Claims take rows with `FOR UPDATE SKIP LOCKED` (no two
 * transactions claim a task), acks are fenced by attempt, and every insert notifies its queue in
 * its transaction (LISTEN wakes idle workers of other processes and hosts). When an operation is
 * given no `now`, time is the database server's (`now()` of its transaction), so hosts with
 * skewed clocks agree; workers are alive by heartbeat age alone (no pid checks across hosts).
 *
 * A failure rejects with a {@linkcode PostgresOperationError}. When the connection drops while a
 * worker's flush commits, its outcome is unknown: the next flush of that worker gives back the
 * tasks it had claimed (fenced by attempt: a no-op if it did not commit), and an ack sent again
 * that had been recorded counts as recorded, not fenced.
 */
export class PostgresBackend implements Backend {
  readonly engine = "postgres";
  /** The connection. */
  readonly pg: PostgresConnection;
  readonly #wakeups: Wakeups;
  readonly #kills = new KillListeners();
  readonly #killNotices: KillNotices;
  /**
   * Per worker name: the tasks this backend handed to it (claimed, started) and it has not
   * acked or released yet. After a flush whose commit went unanswered, a task `running` under
   * the name and not among these was claimed by that flush and never reached the worker.
   */
  #held = new Map<string, Set<string>>();
  /** Workers whose last flush failed without an answer from the server. */
  #uncertain = new Set<string>();
  /** Whether the database counts starts: a worker may run on one nobody has upgraded yet. */
  #startsCounted = new SchemaProbe();

  private constructor(pg: PostgresConnection) {
    this.pg = pg;
    this.#wakeups = new Wakeups(pg);
    this.#killNotices = new KillNotices(pg);
  }

  /** The backend of `pg` (one per connection). */
  static of(pg: PostgresConnection): PostgresBackend {
    let backend = backends.get(pg);
    if (!backend) backends.set(pg, backend = new PostgresBackend(pg));
    return backend;
  }

  get location(): string {
    return this.pg.location;
  }

  get closed(): boolean {
    return this.pg.closed;
  }

  setup(): Promise<number> {
    return this.#op("set up the queue tables", () => migratePostgres(this.pg.sql, this.location));
  }

  /** The schema version of the database, 0 when it has no apalis tables; reads only. */
  schemaVersion(): Promise<number> {
    return this.#op("read the schema version", () => postgresSchemaVersion(this.pg.sql));
  }

  // --- inserts

  async taskInsertMany(rows: readonly NewTaskRow[]): Promise<InsertOutcome> {
    if (rows.length === 0) return { duplicate: null };
    const queue = rows[0]!.queue;
    const action = rows.length === 1
      ? `push task to queue '${queue}'`
      : `push ${rows.length} tasks to queue '${queue}'`;
    const unique = rows.length === 1
      ? rows[0]!.unique === undefined ? false : true
      : rows.some((row) => row.unique !== undefined);
    const existing = unique ? new Map<string, string>() : undefined;
    try {
      await this.#op(
        action,
        () =>
          existing === undefined
            ? insertTaskBatches(this.pg.sql, rows)
            : insertWithUnique(this.pg.sql, rows, existing),
      );
    } catch (error) {
      if (codeOf(error) !== "23505") throw error;
      return { duplicate: await this.#duplicateOf(rows, action) };
    }
    if (existing === undefined) {
      this.notifyPushed(queue);
      return { duplicate: null };
    }
    if (existing.size < rows.length) this.notifyPushed(queue);
    return { duplicate: null, existing };
  }

  /**
   * Inserts a task inside the caller's open transaction `tx` (see `PostgresStorage.pushTx`).
   * `duplicate`: its id exists (the caller's transaction is then aborted, as any failed
   * statement aborts it); `existing`: a unique row whose key is held, by that task.
   */
  async insertInTransaction(
    tx: Executor,
    row: NewTaskRow,
  ): Promise<{ duplicate: boolean; existing?: string }> {
    try {
      if (row.unique !== undefined) {
        const holder = await claimUniqueKey(tx, row);
        if (holder !== null) return { duplicate: false, existing: holder };
      }
      await insertTasks(tx, [row]).execute();
    } catch (error) {
      if (codeOf(error) === "23505") return { duplicate: true };
      throw new PostgresOperationError(
        `push task to queue '${row.queue}' in a transaction`,
        this.location,
        error,
      );
    }
    this.notifyPushed(row.queue);
    return { duplicate: false };
  }

  async #duplicateOf(rows: readonly NewTaskRow[], action: string): Promise<string> {
    const seen = new Set<string>();
    const repeated = rows.find((row) => seen.size === seen.add(row.id).size);
    if (repeated) return repeated.id;
    const [found] = await this.#op(
      action,
      () =>
        this.pg.sql<{ id: string }[]>`
          SELECT id FROM apalis_tasks WHERE id = ANY(${rows.map((row) => row.id) as Param}::text[])
          LIMIT 1`,
    );
    return found?.id ?? rows[0]!.id;
  }

  async runStart(
    run: { id: string; queue: string; now?: number },
    first: NewTaskRow,
  ): Promise<{ duplicate: string | null }> {
    const { sql } = this.pg;
    try {
      await this.#op(`start a workflow run on queue '${run.queue}'`, () =>
        sql.begin(async (tx) => {
          await tx`INSERT INTO apalis_runs (id, queue, created_at)
                   VALUES (${run.id}, ${run.queue},
                           coalesce(${nowParam(run.now)}::bigint, apalis_now()))`;
          await insertTasks(tx, [first]).execute();
        }));
    } catch (error) {
      if (codeOf(error) === "23505") return { duplicate: first.id };
      throw error;
    }
    this.notifyPushed(run.queue);
    return { duplicate: null };
  }

  // --- reads

  async taskGet(id: string): Promise<TaskRow | undefined> {
    const [row] = await this.#op(
      `read task '${id}'`,
      () =>
        this.#withProgress((columns) =>
          this.pg.sql.unsafe<TaskRow[]>(`SELECT ${columns} FROM apalis_tasks WHERE id = $1`, [id])
        ),
    );
    return row && plainRow(row);
  }

  async taskGetMany(ids: readonly string[]): Promise<TaskRow[]> {
    if (ids.length === 0) return [];
    return (await this.#op(
      `read ${ids.length} tasks`,
      () =>
        this.#withProgress((columns) =>
          this.pg.sql.unsafe<TaskRow[]>(
            `SELECT ${columns} FROM apalis_tasks WHERE id = ANY($1::text[])`,
            [ids as Param],
          )
        ),
    )).map(plainRow);
  }

  /**
   * Reads with the progress columns, or without them on a schema older than migration 8 (the
   * library was upgraded and `setup()` not run since): tasks stay readable, without progress.
   */
  async #withProgress<R>(read: (columns: string) => Promise<R>): Promise<R> {
    try {
      return await read(READ_COLUMNS);
    } catch (error) {
      const missing = (error as { code?: unknown } | null)?.code === "42703" &&
        /progress/.test(String((error as { message?: unknown }).message));
      if (!missing) throw error;
      return await read(TASK_COLUMNS);
    }
  }

  taskLogs(id: string, filter: LogFilter): Promise<LogRow[]> {
    return this.#op(`read the log of task '${id}'`, () => readLogs(this.pg.sql, id, filter));
  }

  async taskList(filter: TaskListFilter): Promise<ListedTaskRow[]> {
    const { previewBytes } = filter;
    if (previewBytes !== undefined && !(Number.isSafeInteger(previewBytes) && previewBytes >= 0)) {
      throw new RangeError(
        `'previewBytes' must be an integer >= 0: current value is ${previewBytes}`,
      );
    }
    const columns = previewBytes === undefined ? TASK_COLUMNS : TASK_COLUMNS
      .replace(
        /\bargs\b/,
        `substring(args FROM 1 FOR ${previewBytes}) AS args, octet_length(args) AS args_bytes`,
      )
      .replace(
        /\blast_result\b/,
        `substring(last_result FROM 1 FOR ${previewBytes}) AS last_result, ` +
          `octet_length(last_result) AS result_bytes`,
      );
    const where: string[] = [];
    const params: Param[] = [];
    if (filter.queue !== undefined) {
      params.push(filter.queue);
      where.push(`queue = $${params.length}`);
    }
    if (filter.status !== undefined) {
      params.push(filter.status);
      where.push(`status = $${params.length}`);
    }
    params.push(filter.limit, filter.offset);
    const n = params.length;
    return (await this.#op(
      "list tasks",
      () =>
        this.pg.sql.unsafe<ListedTaskRow[]>(
          `SELECT ${columns} FROM apalis_tasks
           ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
           ORDER BY id DESC LIMIT $${n - 1} OFFSET $${n}`,
          params,
        ),
    )).map(plainRow);
  }

  async taskCounts(queue?: string): Promise<CountRow[]> {
    return await this.#op(
      "count tasks",
      () =>
        this.pg.sql<CountRow[]>`
          SELECT queue, status, count(*)::bigint AS n FROM apalis_tasks
          WHERE (${queue ?? null}::text IS NULL OR queue = ${queue ?? null}::text)
          GROUP BY queue, status`,
    );
  }

  async taskOldestDue(now?: number): Promise<{ queue: string; run_at: number }[]> {
    return await this.#op(
      "read the oldest due tasks",
      () =>
        this.pg.sql<{ queue: string; run_at: number }[]>`
          SELECT queue, min(run_at) AS run_at FROM apalis_tasks
          WHERE status IN ('pending','failed')
            AND run_at <= coalesce(${nowParam(now)}::bigint, apalis_now())
          GROUP BY queue`,
    );
  }

  async workerList(
    queue: string | undefined,
    orphanAfterMs: number,
    now?: number,
  ): Promise<WorkerListRow[]> {
    return await this.#op(
      "list workers",
      () =>
        this.pg.sql<WorkerListRow[]>`
          SELECT w.*, (w.stopped_at IS NULL AND n.now - w.last_seen < ${orphanAfterMs}::bigint)
            AS alive
          FROM apalis_workers AS w,
            (SELECT coalesce(${nowParam(now)}::bigint, apalis_now()) AS now) AS n
          WHERE (${queue ?? null}::text IS NULL OR w.queue = ${queue ?? null}::text)
          ORDER BY w.last_seen DESC, w.name`,
    );
  }

  async throughputSince(since: number, queue?: string): Promise<ThroughputRow[]> {
    return await this.#op(
      "read throughput",
      () =>
        this.pg.sql<ThroughputRow[]>`
          SELECT queue, minute, sum(done)::bigint AS done, sum(failed)::bigint AS failed,
            sum(killed)::bigint AS killed
          FROM apalis_throughput
          WHERE minute >= ${since - (since % 60_000)}::bigint
            AND (${queue ?? null}::text IS NULL OR queue = ${queue ?? null}::text)
          GROUP BY queue, minute ORDER BY minute, queue`,
    );
  }

  async outcomeTotals(): Promise<OutcomeTotalRow[]> {
    return await this.#op("read outcome totals", () => outcomeTotals(this.pg.sql));
  }

  async taskDurations(
    queues: readonly string[],
    sample: number,
    boundsMs: readonly number[],
  ): Promise<DurationsRow[]> {
    return await this.#op(
      "read run and wait times",
      () => taskDurations(this.pg.sql, queues, sample, boundsMs),
    );
  }

  async runGet(id: string): Promise<RunRow | undefined> {
    const [row] = await this.#op(
      `read workflow run '${id}'`,
      () =>
        this.pg.sql<RunRow[]>`
          SELECT id, queue, workflow, status, created_at, done_at, result, error, graph
          FROM apalis_runs WHERE id = ${id}`,
    );
    if (row) row.result = plainBytes(row.result);
    return row;
  }

  async runTasks(id: string): Promise<TaskRow[]> {
    return (await this.#op(
      `read the tasks of workflow run '${id}'`,
      () =>
        this.pg.sql.unsafe<TaskRow[]>(
          `SELECT ${TASK_COLUMNS} FROM apalis_tasks WHERE run_id = $1 ORDER BY run_seq`,
          [id],
        ),
    )).map(plainRow);
  }

  async runList(filter: RunListFilter): Promise<RunListRow[]> {
    const queue = filter.queue ?? null;
    const status = filter.status ?? null;
    return await this.#op(
      "list workflow runs",
      () =>
        this.pg.sql<RunListRow[]>`
          SELECT r.id, r.queue, r.workflow, r.status, r.created_at, r.done_at, r.error,
            c.tasks, c.tasks_done, c.tasks_active, c.tasks_killed
          FROM apalis_runs AS r, LATERAL (
            SELECT count(*)::bigint AS tasks,
              count(*) FILTER (WHERE t.status = 'done')::bigint AS tasks_done,
              count(*) FILTER (WHERE t.status IN ('pending','queued','running','failed'))::bigint
                AS tasks_active,
              count(*) FILTER (WHERE t.status = 'killed')::bigint AS tasks_killed
            FROM apalis_tasks AS t WHERE t.run_id = r.id) AS c
          WHERE (${queue}::text IS NULL OR r.queue = ${queue}::text)
            AND (${status}::text IS NULL OR r.status = ${status}::text)
          ORDER BY r.id DESC LIMIT ${filter.limit} OFFSET ${filter.offset}`,
    );
  }

  joinParts(runId: string, key: string): Promise<JoinPartRow[]> {
    return this.#op(
      `read join '${key}' of run '${runId}'`,
      () => joinParts(this.pg.sql, runId, key),
    );
  }

  async timeNow(): Promise<number> {
    const [row] = await this.#op(
      "read the time",
      () =>
        this.pg.sql<{ now: number }[]>`
          SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now`,
    );
    return row!.now;
  }

  // --- changes by hand

  async taskRetry(id: string, now?: number): Promise<boolean> {
    const rows = await this.#op(`retry task '${id}'`, () =>
      this.pg.sql`
        WITH retried AS (
          UPDATE apalis_tasks SET status = 'pending', attempts = 0,
            run_at = coalesce(${nowParam(now)}::bigint, apalis_now()), done_at = NULL,
            lock_by = NULL, lock_at = NULL, step = step
          WHERE id = ${id} AND status IN ('done','failed','killed','pending')
          RETURNING queue
        )
        SELECT apalis_notify(queue) FROM retried`);
    return rows.length === 1;
  }

  async taskRetryAll(
    filter: { queue: string; status: TaskStatus; now?: number },
    batchSize: number,
  ): Promise<number> {
    const { queue, status } = filter;
    let changed = 0;
    let after = "";
    while (true) {
      const [row] = await this.#op(
        `retry ${status} tasks of queue '${queue}'`,
        () =>
          this.pg.sql<{ n: number; last: string | null }[]>`
            WITH window_ AS (
              SELECT id FROM apalis_tasks
              WHERE queue = ${queue} AND status = ${status} AND id > ${after}
              ORDER BY id LIMIT ${batchSize}
            ), retried AS (
              UPDATE apalis_tasks SET status = 'pending', attempts = 0,
                run_at = coalesce(${nowParam(filter.now)}::bigint, apalis_now()), done_at = NULL,
                lock_by = NULL, lock_at = NULL, step = step
              WHERE id IN (SELECT id FROM window_) AND status = ${status}
                AND status IN ('done','failed','killed')
              RETURNING 1
            ), woken AS (
              SELECT apalis_notify(${queue}) WHERE EXISTS (SELECT 1 FROM retried)
            )
            SELECT (SELECT count(*) FROM retried) AS n,
              (SELECT CASE WHEN count(*) < ${batchSize} THEN NULL ELSE max(id) END FROM window_)
                AS last,
              (SELECT count(*) FROM woken) AS w`,
      );
      changed += row!.n;
      if (row!.n > 0) this.notifyPushed(queue);
      if (row!.last === null) return changed;
      after = row!.last;
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }

  async taskKill(id: string, error: string, now?: number): Promise<boolean> {
    const [row] = await this.#op(`kill task '${id}'`, () =>
      this.pg.sql<{ n: number }[]>`
        WITH before AS (
          SELECT id, status FROM apalis_tasks WHERE id = ${id} FOR UPDATE
        ), killed AS (
          UPDATE apalis_tasks AS t SET status = 'killed', last_error = ${error},
            done_at = coalesce(${nowParam(now)}::bigint, apalis_now()), step = t.step
          FROM before
          WHERE t.id = before.id AND t.status IN ('pending','queued','running','failed')
          RETURNING t.queue, t.status, t.done_at, before.status AS was
        ), counted AS (
          ${countOutcomes(this.pg.sql, "killed")}
        ), notified AS (
          -- The worker running it hears it when the kill commits (see kill_notices.ts).
          SELECT pg_notify(${KILL_CHANNEL},
                           CASE WHEN octet_length(${id}) <= 4000 THEN ${id} ELSE '' END)
          FROM killed WHERE was = 'running'
        )
        SELECT (SELECT count(*) FROM killed) AS n, (SELECT count(*) FROM notified) AS notices`);
    return row!.n === 1;
  }

  async taskDelete(id: string): Promise<boolean> {
    const result = await this.#op(
      `delete task '${id}'`,
      () => this.pg.sql`DELETE FROM apalis_tasks WHERE id = ${id}`,
    );
    return result.count === 1;
  }

  retentionStep(step: RetentionStep): Promise<RetentionStepResult> {
    return this.#op(
      `delete expired tasks of queue '${step.queue}'`,
      () => retentionStep(this.pg.sql, step),
    );
  }

  async retentionRelease(
    release: { queue: string; holder: string; nextInMs: number; now?: number },
  ): Promise<void> {
    await this.#op(
      `release the retention lease of queue '${release.queue}'`,
      () => retentionRelease(this.pg.sql, release),
    );
  }

  async taskVacuum(before: number, batchSize: number): Promise<number> {
    await this.#op(
      "vacuum outcome counts",
      () => this.pg.sql`DELETE FROM apalis_throughput WHERE minute + 60000 <= ${before}::bigint`,
    );
    let deleted = 0;
    let after: [string, string, string] = ["", "", ""];
    while (true) {
      const [row] = await this.#op(
        "vacuum finished tasks",
        () =>
          this.pg.sql<{ n: number; queue: string | null; status: string; id: string }[]>`
            WITH window_ AS (
              SELECT queue, status, id, done_at FROM apalis_tasks
              WHERE status IN ('done','failed','killed')
                AND (queue, status, id) > (${after[0]}::text COLLATE "C", ${after[1]}::text,
                                           ${after[2]}::text COLLATE "C")
              ORDER BY queue, status, id LIMIT ${batchSize}
            ), gone AS (
              DELETE FROM apalis_tasks AS t WHERE t.id IN (
                SELECT id FROM window_
                WHERE status IN ('done','killed') AND done_at <= ${before}::bigint)
                -- Checked again on the row deleted (retried meanwhile: it stays); a task of a
                -- run goes with its run, whole (see retention.ts), unless the run is gone.
                AND t.status IN ('done','killed') AND t.done_at <= ${before}::bigint
                AND (t.run_id IS NULL
                     OR NOT EXISTS (SELECT 1 FROM apalis_runs AS r WHERE r.id = t.run_id))
              RETURNING 1
            ), last AS (
              SELECT queue, status, id FROM window_ ORDER BY queue DESC, status DESC, id DESC
              LIMIT 1
            )
            SELECT (SELECT count(*) FROM gone) AS n,
              (SELECT CASE WHEN count(*) < ${batchSize} THEN NULL ELSE 1 END FROM window_) AS more,
              last.queue, last.status, last.id
            FROM (SELECT 1) AS one LEFT JOIN last ON true`,
      );
      deleted += row!.n;
      if ((row as unknown as { more: number | null }).more === null || row!.queue === null) {
        break;
      }
      after = [row!.queue, row!.status, row!.id];
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    // Runs go whole, as retention deletes them: finished, with every task finished by `before`.
    const cutoffs = { done: before, killed: before };
    const { sql } = this.pg;
    const queues = await this.#op("vacuum finished runs", () => queuesWithFinishedRuns(sql));
    for (const queue of queues) {
      let from: readonly [number, string] | undefined;
      do {
        const found = await this.#op(
          "vacuum finished runs",
          () => readExpiredRuns(sql, queue, batchSize, cutoffs, from),
        );
        if (found.ids.length > 0) {
          const gone = await this.#op(
            "vacuum finished runs",
            () => sql.begin((tx) => deleteRuns(tx, found.ids, cutoffs)),
          );
          deleted += gone.tasks;
        }
        from = found.next?.after;
        await new Promise((resolve) => setTimeout(resolve, 0));
      } while (from !== undefined);
    }
    return deleted;
  }

  async runName(id: string, workflow: string, graph: string): Promise<void> {
    await this.#op(
      `name run '${id}'`,
      () =>
        this.pg.sql`UPDATE apalis_runs SET workflow = ${workflow}, graph = ${graph}
                    WHERE id = ${id} AND workflow IS NULL`,
    );
  }

  // --- workers

  async workerRegister(worker: WorkerRegistration): Promise<WorkerRow | null> {
    return await this.#op(
      `register worker '${worker.name}'`,
      () =>
        this.pg.sql.begin(async (tx) => {
          // Two instances registering one name at once take turns.
          await tx`SELECT pg_advisory_xact_lock(hashtext('apalis_worker'), hashtext(${worker.name}))`;
          const [[time], [existing]] = await Promise.all([
            tx<{ now: number }[]>`SELECT coalesce(${
              nowParam(worker.now)
            }::bigint, apalis_now()) AS now`,
            tx<(WorkerRow & { alive: boolean })[]>`
            SELECT w.*, (w.stopped_at IS NULL
                         AND coalesce(${nowParam(worker.now)}::bigint, apalis_now()) - w.last_seen
                           < ${worker.orphanAfterMs}::bigint) AS alive
            FROM apalis_workers AS w WHERE w.name = ${worker.name}`,
          ]);
          if (existing?.alive) {
            const { alive: _alive, ...row } = existing;
            return row as WorkerRow;
          }
          const now = time!.now;
          this.#held.set(worker.name, new Set());
          this.#uncertain.delete(worker.name);
          // A previous incarnation that died leaves tasks under this name: take them back first.
          await rescueTasks(tx, now, worker.name);
          await tx`
          INSERT INTO apalis_workers
            (name, queue, instance_id, host, pid, started_at, last_seen, stopped_at, concurrency)
          VALUES (${worker.name}, ${worker.queue}, ${worker.instanceId}, ${worker.host},
            ${worker.pid}::bigint, ${now}::bigint, ${now}::bigint, NULL,
            ${worker.concurrency}::bigint)
          ON CONFLICT (name) DO UPDATE SET queue = excluded.queue,
            instance_id = excluded.instance_id, host = excluded.host, pid = excluded.pid,
            started_at = excluded.started_at, last_seen = excluded.last_seen, stopped_at = NULL,
            concurrency = excluded.concurrency`;
          return null;
        }),
    );
  }

  async workerHeartbeat(
    worker: { name: string; instanceId: string; orphanAfterMs: number; now?: number },
  ): Promise<number | null> {
    return await this.#op(
      `record the heartbeat of worker '${worker.name}'`,
      () =>
        this.pg.sql.begin(async (tx) => {
          const now = nowParam(worker.now);
          const beat = await tx`
          UPDATE apalis_workers SET last_seen = coalesce(${now}::bigint, apalis_now())
          WHERE name = ${worker.name} AND instance_id = ${worker.instanceId}
            AND stopped_at IS NULL`;
          if (beat.count !== 1) return null;
          // Workers are dead by heartbeat age alone: a pid means nothing on another host.
          await tx`
          UPDATE apalis_workers SET stopped_at = coalesce(${now}::bigint, apalis_now())
          WHERE stopped_at IS NULL AND name <> ${worker.name}
            AND coalesce(${now}::bigint, apalis_now()) - last_seen >= ${worker.orphanAfterMs}::bigint`;
          const [rescued] = await rescueTasks(tx, worker.now);
          return rescued!.n;
        }),
    );
  }

  async workerUnregister(
    worker: {
      name: string;
      instanceId: string;
      ahead: readonly { id: string; attempts: number }[];
      now?: number;
    },
  ): Promise<void> {
    await this.#op(`unregister worker '${worker.name}'`, () =>
      this.pg.sql.begin(async (tx) => {
        const now = nowParam(worker.now);
        await Promise.all([
          ...(this.#uncertain.has(worker.name)
            ? [releaseUnknown(tx, worker.name, this.#heldBy(worker.name)).execute()]
            : []),
          releaseQueued(tx, worker.name).execute(),
          releaseAhead(tx, worker.name, worker.ahead).execute(),
          tx`UPDATE apalis_workers
             SET stopped_at = coalesce(${now}::bigint, apalis_now()),
               last_seen = greatest(last_seen, coalesce(${now}::bigint, apalis_now()))
             WHERE name = ${worker.name} AND instance_id = ${worker.instanceId}
               AND stopped_at IS NULL`.execute(),
        ]);
      }));
    this.#uncertain.delete(worker.name);
    this.#held.delete(worker.name);
  }

  async workerLostAttempts(
    worker: string,
    held: readonly HeldAttempt[],
  ): Promise<LostAttemptRow[]> {
    if (held.length === 0) return [];
    return await this.#op(
      `check the ${held.length} attempts worker '${worker}' runs`,
      () =>
        this.pg.sql<LostAttemptRow[]>`
          SELECT h.id, h.attempt, t.status, t.lock_by, t.attempts, t.last_error
          FROM unnest(${held.map((item) => item.id) as Param}::text[],
                      ${held.map((item) => item.attempt) as Param}::bigint[]) AS h(id, attempt)
          LEFT JOIN apalis_tasks AS t ON t.id = h.id
          WHERE t.id IS NULL OR t.status <> 'running' OR t.lock_by IS DISTINCT FROM ${worker}
            OR t.attempts <> h.attempt`,
    );
  }

  async workerFlush(request: FlushRequest): Promise<FlushResult> {
    const { queue, worker } = request;
    if (request.shared && request.shared.length > 0) {
      throw new Error(
        `Cannot claim for other queues' workers on PostgreSQL at ${this.location}: shared storage (SharedSqliteStorage) is SQLite-only; give each queue its own worker`,
      );
    }
    const uncertain = this.#uncertain.has(worker);
    // A worker may run on a database nobody has upgraded yet: its starts then go uncounted.
    // (Known once seen: no await on the hot path.)
    if (request.started && !this.#startsCounted.present && !(await this.#countsStarts())) {
      request = { ...request, started: 0 };
    }
    let result: FlushResult;
    try {
      // Plain flushes (the hot path) are one round trip: the statements in one batch, which
      // the server runs as one implicit transaction. Steps' effects need a transaction.
      result = !uncertain && !request.acks.some((item) => item.run)
        ? await this.#flushBatch(request)
        : await this.pg.sql.begin((tx) => this.#flush(tx, request, uncertain));
    } catch (error) {
      // A connection lost while committing leaves the outcome unknown: the next flush gives
      // back what this one may have claimed, and treats acks found recorded as recorded.
      if (!isServerError(error) && !(error instanceof EffectCodeError)) {
        this.#uncertain.add(worker);
      }
      throw new PostgresOperationError(
        `record outcomes and claim tasks for worker '${worker}'`,
        this.location,
        error,
      );
    }
    this.#uncertain.delete(worker);
    const held = this.#heldBy(worker);
    for (const item of request.acks) held.delete(item.ack.id);
    if (request.release) { for (const task of request.release.ahead) held.delete(task.id); }
    for (const row of result.running) held.add(row.id);
    for (const row of result.ahead) held.add(row.id);
    for (const id of result.started) held.add(id);
    // Workflow steps may have enqueued tasks: wake this process's fetchers.
    if (request.acks.some((item) => item.run)) this.notifyPushed(queue);
    return result;
  }

  /** Whether the database counts starts (read once it does; else at most once a minute). */
  async #countsStarts(): Promise<boolean> {
    try {
      return await this.#startsCounted.hasAsync(async () =>
        await postgresSchemaVersion(this.pg.sql) >= POSTGRES_STARTED_COUNT_VERSION
      );
    } catch {
      return false; // the flush that follows meets the same trouble and reports it
    }
  }

  #heldBy(worker: string): Set<string> {
    let held = this.#held.get(worker);
    if (!held) this.#held.set(worker, held = new Set());
    return held;
  }

  /** A flush without steps' effects, as one batch of statements (one round trip). */
  async #flushBatch(request: FlushRequest): Promise<FlushResult> {
    const { sql } = this.pg;
    const { worker, claim } = request;
    const plain: TaskAck[] = [];
    const inRun: TaskAck[] = [];
    for (const item of request.acks) (item.ack.inRun ? inRun : plain).push(item.ack);
    // deno-lint-ignore no-explicit-any
    const queries: PendingQuery<any[]>[] = [];
    if (inRun.length > 0) queries.push(lockRunsOf(sql, inRun.map((ack) => ack.id)));
    // Progress and log lines before the acks (after the runs' locks, in the acks' lock order):
    // an attempt's last ones land with its outcome.
    if (request.progress) queries.push(writeProgress(sql, request.progress, worker, request.now));
    if (request.logs) queries.push(appendLogs(sql, request.logs, worker));
    const ackAt: [TaskAck[], number][] = [];
    if (plain.length > 0) {
      ackAt.push([plain, queries.push(ackTasks(sql, plain, worker, request.now, false)) - 1]);
    }
    if (inRun.length > 0) {
      ackAt.push([inRun, queries.push(ackTasks(sql, inRun, worker, request.now, true)) - 1]);
    }
    if (request.release) {
      queries.push(releaseQueued(sql, worker));
      if (request.release.ahead.length > 0) {
        queries.push(releaseAhead(sql, worker, request.release.ahead));
      }
    }
    const startAt = request.start.length > 0
      ? queries.push(startQueued(sql, request.start, worker, request.now)) - 1
      : -1;
    if (request.started) {
      queries.push(countStarted(sql, request.queue, request.started, request.now));
    }
    const claimAt = queries.push(claimTasks(sql, {
      queue: request.queue,
      worker,
      now: request.now,
      direct: claim.direct,
      ahead: claim.ahead,
    })) - 1;
    const results = await sql.batch(queries) as Row[][];
    const fenced = new Set<string>();
    for (const [group, at] of ackAt) {
      const recorded = new Set((results[at] as { id: string }[]).map((row) => row.id));
      for (const ack of group) if (!recorded.has(ack.id)) fenced.add(ack.id);
    }
    const started = startAt < 0
      ? new Set<string>()
      : new Set((results[startAt] as { id: string }[]).map((row) => row.id));
    return this.#result(claimedRows(results[claimAt] as ClaimRow[], request.queue), {
      started,
      fenced,
    });
  }

  #result(
    claimed: ReturnType<typeof claimedRows>,
    rest: { started: Set<string>; fenced: Set<string> },
  ): FlushResult {
    const flushed: FlushResult = {
      running: claimed.running,
      ahead: claimed.ahead,
      started: rest.started,
      fenced: rest.fenced,
      now: claimed.now,
    };
    if (claimed.nextDueInMs !== undefined) flushed.nextDueInMs = claimed.nextDueInMs;
    if (claimed.flow !== undefined) flushed.flow = claimed.flow;
    return flushed;
  }

  /** A flush in a transaction of its own: with steps' effects, or after an unanswered one. */
  async #flush(
    tx: TransactionSql,
    request: FlushRequest,
    uncertain: boolean,
  ): Promise<FlushResult> {
    const { worker, claim } = request;
    const plain: TaskAck[] = [];
    const inRun: TaskAck[] = [];
    const withEffects: FlushAck[] = [];
    for (const item of request.acks) {
      if (item.run) withEffects.push(item);
      else if (item.ack.inRun) inRun.push(item.ack);
      else plain.push(item.ack);
    }
    const fenced = new Set<string>();
    let now = request.now;
    // Statements that need no answer before the next are sent together (pipelined).
    const first: Promise<unknown>[] = [];
    if (uncertain) first.push(releaseUnknown(tx, worker, this.#heldBy(worker)).execute());
    if (inRun.length > 0 || withEffects.length > 0) {
      const ids = [...inRun, ...withEffects.map((item) => item.ack)].map((ack) => ack.id);
      first.push(lockRunsOf(tx, ids).execute());
    }
    // Progress and log lines before the acks (sent in order, after the runs' locks).
    if (request.progress) {
      first.push(writeProgress(tx, request.progress, worker, request.now).execute());
    }
    if (request.logs) first.push(appendLogs(tx, request.logs, worker).execute());
    if (now === undefined && withEffects.length > 0) {
      first.push(tx<{ now: number }[]>`SELECT apalis_now() AS now`.then(([row]) => {
        now = row!.now;
      }));
    }
    const ackGroups: [TaskAck[], Promise<{ id: string }[]>][] = [];
    for (const [group, run] of [[plain, false], [inRun, true]] as const) {
      if (group.length === 0) continue;
      ackGroups.push([group, ackTasks(tx, group, worker, request.now, run).execute()]);
    }
    await Promise.all([...first, ...ackGroups.map(([, promise]) => promise)]);
    for (const [group, promise] of ackGroups) {
      const recorded = new Set((await promise).map((row) => row.id));
      for (const ack of group) if (!recorded.has(ack.id)) fenced.add(ack.id);
    }
    const replaced = withEffects.length > 0
      ? await this.#ackWithEffects(tx, withEffects, worker, request.now, now!, fenced)
      : undefined;
    if (uncertain && fenced.size > 0) await this.#unfenceRecorded(tx, request.acks, worker, fenced);
    const writes: Promise<unknown>[] = [];
    if (request.release) {
      writes.push(releaseQueued(tx, worker).execute());
      if (request.release.ahead.length > 0) {
        writes.push(releaseAhead(tx, worker, request.release.ahead).execute());
      }
    }
    if (request.started) {
      writes.push(countStarted(tx, request.queue, request.started, request.now).execute());
    }
    let started = new Set<string>();
    if (request.start.length > 0) {
      writes.push(
        startQueued(tx, request.start, worker, request.now).then((rows) => {
          started = new Set(rows.map((row) => row.id));
        }),
      );
    }
    const claiming = claimTasks(tx, {
      queue: request.queue,
      worker,
      now: request.now,
      direct: claim.direct,
      ahead: claim.ahead,
    }).execute();
    await Promise.all(writes);
    const flushed = this.#result(claimedRows(await claiming, request.queue), { started, fenced });
    if (replaced && replaced.size > 0) flushed.replaced = replaced;
    return flushed;
  }

  /**
   * Acks with effects, one savepoint each: the ack and its effects commit together or not at
   * all. Effects that throw for a reason of their own (their code, or data the database refuses)
   * turn the attempt into a failure (`onEffectsFailed`); a problem of the database itself fails
   * the whole flush. Returns the acks recorded instead, by task id.
   */
  async #ackWithEffects(
    tx: TransactionSql,
    items: readonly FlushAck[],
    worker: string,
    clock: number | undefined,
    now: number,
    fenced: Set<string>,
  ): Promise<Map<string, { ack: TaskAck; error: unknown }>> {
    const replaced = new Map<string, { ack: TaskAck; error: unknown }>();
    for (const item of items) {
      try {
        await tx.savepoint(async (sp) => {
          const recorded = await ackTasks(sp, [item.ack], worker, clock, true);
          if (recorded.length === 0) {
            fenced.add(item.ack.id);
            return;
          }
          await applyEffects(sp, item.run!.id, item.ack.id, item.run!.effects, now);
        });
      } catch (thrown) {
        const error = thrown instanceof EffectCodeError ? thrown.error : thrown;
        if (!(thrown instanceof EffectCodeError) && isDatabaseProblem(thrown)) throw thrown;
        if (!item.onEffectsFailed) throw thrown;
        const ack = item.onEffectsFailed(error);
        replaced.set(item.ack.id, { ack, error });
        const recorded = await ackTasks(tx, [ack], worker, clock, true);
        if (recorded.length === 0) fenced.add(ack.id);
      }
    }
    return replaced;
  }

  /**
   * After a flush whose commit went unanswered, acks sent again find their task already in the
   * state they would write (by this worker, in this attempt): recorded, not fenced.
   */
  async #unfenceRecorded(
    tx: TransactionSql,
    acks: readonly FlushAck[],
    worker: string,
    fenced: Set<string>,
  ): Promise<void> {
    const rows = await tx<{ id: string; status: string; attempts: number }[]>`
      SELECT id, status, attempts FROM apalis_tasks
      WHERE id = ANY(${[...fenced] as Param}::text[]) AND lock_by = ${worker}
        AND status IN ('done','failed')`;
    const byId = new Map(rows.map((row) => [row.id, row]));
    for (const { ack } of acks) {
      const row = byId.get(ack.id);
      if (row && row.status === ack.status && row.attempts === ack.attempt) fenced.delete(ack.id);
    }
  }

  // --- flow control

  queueSettingsList(): Promise<QueueSettingsRow[]> {
    return this.#op(
      "read the queues' settings",
      () => withoutSettingsTable(queueSettingsList(this.pg.sql), []),
    );
  }

  queueSettingsGet(queue: string): Promise<QueueSettingsRow | undefined> {
    return this.#op(
      `read the settings of queue '${queue}'`,
      () => withoutSettingsTable(queueSettingsGet(this.pg.sql, queue), undefined),
    );
  }

  async queueSetLimits(
    queue: string,
    change: QueueLimitsChange,
    now?: number,
  ): Promise<QueueSettingsRow> {
    const row = await this.#op(
      `set the limits of queue '${queue}'`,
      () => queueChange(this.pg.sql, queue, change, now),
    );
    this.notifyPushed(queue);
    return row;
  }

  async queueSetPaused(queue: string, paused: boolean, now?: number): Promise<QueueSettingsRow> {
    const row = await this.#op(
      `${paused ? "pause" : "resume"} queue '${queue}'`,
      () => queueChange(this.pg.sql, queue, { paused }, now),
    );
    this.notifyPushed(queue);
    return row;
  }

  // --- cron schedules

  async scheduleUpsert(
    schedule: ScheduleUpsert,
  ): Promise<{ written: true } | { written: false; queue: string }> {
    const owner = await this.#op(
      `schedule '${schedule.name}' on queue '${schedule.queue}'`,
      () => scheduleUpsert(this.pg.sql, schedule),
    );
    return owner === null ? { written: true } : { written: false, queue: owner };
  }

  scheduleDelete(name: string, queue: string): Promise<boolean> {
    return this.#op(
      `unschedule '${name}' of queue '${queue}'`,
      () => scheduleDelete(this.pg.sql, name, queue),
    );
  }

  scheduleList(queue?: string): Promise<ScheduleRow[]> {
    return this.#op("list schedules", () => scheduleList(this.pg.sql, queue));
  }

  scheduleDue(queue: string, limit: number, now?: number): Promise<ScheduleDue> {
    return this.#op(
      `read the due schedules of queue '${queue}'`,
      () => scheduleDue(this.pg.sql, queue, limit, nowParam(now)),
    );
  }

  async scheduleAdvance(advance: ScheduleAdvance): Promise<boolean> {
    const moved = await this.#op(
      `enqueue the due ticks of schedule '${advance.name}'`,
      () => this.pg.sql.begin((tx) => scheduleAdvance(tx, advance)),
    );
    if (moved && advance.tasks.length > 0) this.notifyPushed(advance.queue);
    return moved;
  }

  // --- wake-ups

  onPushed(queue: string, listener: () => void): () => void {
    return this.#wakeups.onPushed(queue, listener);
  }

  notifyPushed(queue: string): void {
    this.#wakeups.notifyPushed(queue);
  }

  onExternalCommit(listener: () => void, queue?: string): () => void {
    return this.#wakeups.onExternalCommit(listener, queue);
  }

  onKilled(listener: (kill: TaskKill) => void): () => void {
    return this.#kills.on(listener);
  }

  onExternalKill(listener: (id: string) => void): () => void {
    return this.#killNotices.on(listener);
  }

  notifyKilled(kill: TaskKill): void {
    this.#kills.notify(kill);
  }

  isStorageFull(error: unknown): boolean {
    return codeOf(error) === "53100";
  }

  async close(): Promise<void> {
    await this.#wakeups.close();
    await this.#killNotices.close();
    await this.pg.close();
  }

  /** Runs `fn`, wrapping the client's and the server's errors with what was attempted. */
  async #op<T>(action: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof PostgresOperationError || codeOf(error) === undefined) throw error;
      throw new PostgresOperationError(action, this.location, error);
    }
  }
}

/**
 * Whether an error thrown while a step's effects ran is a problem of the database itself (the
 * connection, resources, the server), rather than of the data the effects wrote (classes 22 and
 * 23: a value or a constraint the database refuses).
 */
function isDatabaseProblem(error: unknown): boolean {
  const code = codeOf(error);
  if (code === undefined) return false; // thrown by code, not by the client
  if (isServerError(error)) return !(code.startsWith("22") || code.startsWith("23"));
  return true; // the connection's
}

export type { ClaimedRow };

/** Rows per INSERT statement of a big pushAll. */
const INSERT_BATCH = 1000;

/**
 * Inserts `rows` atomically: one statement when they are few, else statements of
 * {@linkcode INSERT_BATCH} rows in one transaction. PostgreSQL and the client handle one huge
 * statement (50,000 rows: parameters of megabytes) slower per row than a series of small ones.
 */
async function insertTaskBatches(sql: PostgresConnection["sql"], rows: readonly NewTaskRow[]) {
  if (rows.length <= INSERT_BATCH) {
    await insertTasks(sql, rows).execute();
    return;
  }
  await sql.begin(async (tx) => {
    for (let first = 0; first < rows.length; first += INSERT_BATCH) {
      await insertTasks(tx, rows.slice(first, first + INSERT_BATCH)).execute();
    }
  });
}

/**
 * Inserts rows some of which are unique, in one transaction: the plain ones in statements of
 * {@linkcode INSERT_BATCH}, then each unique one after claiming its key (`existing` gets the
 * rows whose key was held, by holder). Unique rows claim their keys in key order, so that two
 * pushes of the same keys wait for each other rather than deadlock; rows of one key keep their
 * order (the first one claims it, a later one finds it held).
 */
async function insertWithUnique(
  sql: PostgresConnection["sql"],
  rows: readonly NewTaskRow[],
  existing: Map<string, string>,
): Promise<void> {
  const plain = rows.filter((row) => row.unique === undefined);
  const unique = rows.filter((row) => row.unique !== undefined)
    .sort((a, b) => a.unique!.key < b.unique!.key ? -1 : a.unique!.key > b.unique!.key ? 1 : 0);
  await sql.begin(async (tx) => {
    existing.clear(); // a transaction retried by the client starts over
    for (let first = 0; first < plain.length; first += INSERT_BATCH) {
      await insertTasks(tx, plain.slice(first, first + INSERT_BATCH)).execute();
    }
    for (const row of unique) {
      const holder = await claimUniqueKey(tx, row);
      if (holder !== null) existing.set(row.id, holder);
      else await insertTasks(tx, [row]).execute();
    }
  });
}
