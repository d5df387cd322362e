/**
 * The raw PostgreSQL ceiling for the queue's work: the same server (the benchmark's private
 * cluster, fsync on), the same client (`postgres`, one connection, statements prepared), a table
 * shaped like a minimal queue (primary key and a partial claim index, ids as `text COLLATE "C"`
 * as the queue's), the same payloads (`email(i)` as JSON bytes in a `bytea`) made before the
 * clock starts, and no queue library. Each measure runs on a fresh database. The queue's figures
 * are reported as ratios to these.
 *
 * Beside them, two floors that run the queue's own schema with no worker or storage:
 * {@linkcode pgQueueSqlInsert} and {@linkcode pgQueueSqlClaimAck}.
 *
 * @module
 */
import postgres, { type Sql } from "postgres";
import { Task } from "../mod.ts";
import type { FlushAck } from "../lib/backend/types.ts";
import { connectPostgres, PostgresStorage } from "../postgres.ts";
import { type Email, email, payloadRows, QUEUE, rate } from "./_shared.ts";
import type { BenchTarget, RawDrain } from "./_target.ts";
import { CEILING_BATCH } from "./_target.ts";
import type { PostgresServer } from "./pg_target.ts";

const SCHEMA = `
  CREATE TABLE jobs (
    id       text COLLATE "C" PRIMARY KEY,
    queue    text NOT NULL,
    status   text NOT NULL DEFAULT 'pending',
    args     bytea NOT NULL,
    attempts bigint NOT NULL DEFAULT 0,
    priority bigint NOT NULL DEFAULT 0,
    run_at   bigint NOT NULL,
    lock_by  text,
    done_at  bigint,
    result   bytea
  );
  CREATE INDEX jobs_claim ON jobs (queue, priority DESC, run_at, id) WHERE status = 'pending';`;

/** A raw client of `url`: one connection, prepared statements (the client's default). */
export function rawClient(url: string): Sql {
  return postgres(url, {
    max: 1,
    onnotice: () => {},
    connection: { application_name: "apalis-bench-ceiling" },
  });
}

/**
 * Runs `fn` with a raw client on a fresh database, after `schema` made its tables (SQL, or a
 * function given the database's URL that must close what it opens; none: `fn` makes them); the
 * client is connected before `fn` runs.
 */
async function withRawTable<T>(
  server: PostgresServer,
  fn: (sql: Sql) => Promise<T>,
  schema: string | ((url: string) => Promise<void>) | null = SCHEMA,
): Promise<T> {
  await using db = await server.createDatabase();
  if (typeof schema === "function") await schema(db.url);
  const sql = rawClient(db.url);
  try {
    if (typeof schema === "string") await sql.unsafe(schema).simple();
    else await sql`SELECT 1`;
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** One INSERT per transaction (autocommit), `n` times, awaited one by one; rows/s. */
export function pgCeilingInsertOne(server: PostgresServer, n: number): Promise<number> {
  const data = payloadRows(n);
  return withRawTable(server, async (sql) => {
    const now = Date.now();
    const start = performance.now();
    for (const [id, args] of data) {
      await sql`INSERT INTO jobs (id, queue, args, run_at)
        VALUES (${id}, 'bench', ${args}, ${now})`;
    }
    return rate(n, performance.now() - start);
  });
}

/**
 * How a raw transaction writes its rows: one multi-row `VALUES` statement, one statement over
 * arrays (`unnest`, as the queue's own INSERT), or one INSERT per row, pipelined between BEGIN and
 * COMMIT.
 */
export type InsertWay = "values" | "unnest" | "each";

/** The {@linkcode InsertWay}s, in the order they are reported. */
export const INSERT_WAYS: readonly InsertWay[] = ["values", "unnest", "each"];

/** The SQL of a multi-row VALUES INSERT of `rows` rows ($1: run_at; then id, args per row). */
function valuesSql(rows: number): string {
  const tuples = Array.from(
    { length: rows },
    (_, i) => `($${2 * i + 2}, 'bench', $${2 * i + 3}, $1)`,
  );
  return `INSERT INTO jobs (id, queue, args, run_at) VALUES ${tuples.join(", ")}`;
}

/**
 * `n` rows inserted in transactions of `batch`, the `way` given (a single statement is a
 * transaction of its own); rows/s. The rows are made before the clock starts.
 */
export function pgCeilingInsertBatch(
  server: PostgresServer,
  n: number,
  batch: number,
  way: InsertWay,
): Promise<number> {
  const data = payloadRows(n);
  return withRawTable(server, async (sql) => {
    const texts = new Map<number, string>();
    const now = Date.now();
    const start = performance.now();
    for (let first = 0; first < n; first += batch) {
      const chunk = data.slice(first, first + batch);
      if (way === "values") {
        let text = texts.get(chunk.length);
        if (text === undefined) texts.set(chunk.length, text = valuesSql(chunk.length));
        await sql.unsafe(text, [now, ...chunk.flat()], { prepare: true });
      } else if (way === "unnest") {
        await sql`INSERT INTO jobs (id, queue, args, run_at)
          SELECT r.id, 'bench', r.args, ${now}
          FROM unnest(${chunk.map((row) => row[0])}::text[],
            ${chunk.map((row) => row[1]) as never}::bytea[]) AS r(id, args)`;
      } else {
        await sql.begin((tx) =>
          chunk.map(([id, args]) =>
            tx`INSERT INTO jobs (id, queue, args, run_at) VALUES (${id}, 'bench', ${args}, ${now})`
          )
        );
      }
    }
    return rate(n, performance.now() - start);
  });
}

/**
 * Not a ceiling but the floor under `pushAll`: the queue's own table (`PostgresStorage.setup`),
 * filled as the ceiling's `unnest` way fills its minimal one (one statement over arrays of a
 * plain task's columns, rows made before the clock starts, transactions of `batch`). What
 * separates this from that way is what the data model asks of PostgreSQL per row (its indexes);
 * what separates `pushAll` from this is the library (and its NOTIFY at each commit).
 */
export function pgQueueSqlInsert(
  server: PostgresServer,
  n: number,
  batch: number,
): Promise<number> {
  const data = payloadRows(n);
  return withRawTable(server, async (sql) => {
    const now = Date.now();
    const start = performance.now();
    for (let first = 0; first < n; first += batch) {
      const chunk = data.slice(first, first + batch);
      await sql`INSERT INTO apalis_tasks (id, queue, args, max_attempts, priority, run_at,
          created_at)
        SELECT r.id, ${QUEUE}, r.args, 5, 0, ${now}, ${now}
        FROM unnest(${chunk.map((row) => row[0])}::text[],
          ${chunk.map((row) => row[1]) as never}::bytea[]) AS r(id, args)`;
    }
    return rate(n, performance.now() - start);
  }, async (url) => {
    const pg = await connectPostgres(url, { max: 1 });
    try {
      await PostgresStorage.setup(pg);
    } finally {
      await pg.close();
    }
  });
}

/** Fills the ceiling's table with `n` due rows in one statement. */
async function preload(sql: Sql, n: number): Promise<void> {
  await sql.unsafe(SCHEMA).simple();
  const data = payloadRows(n);
  await sql`INSERT INTO jobs (id, queue, args, run_at)
    SELECT r.id, 'bench', r.args, ${Date.now()}
    FROM unnest(${data.map((row) => row[0])}::text[],
      ${data.map((row) => row[1]) as never}::bytea[]) AS r(id, args)`;
  // No ANALYZE, as the queue's drains get none: the plan is the same (index scans) either way.
}

/**
 * Drains the due rows of a preloaded table as `worker`: claims `batch` in one statement and
 * transaction (`UPDATE … WHERE id IN (SELECT … LIMIT batch FOR UPDATE SKIP LOCKED) RETURNING
 * id`), then acks them in another (`WHERE id = ANY($2)`), as a durable queue must (the claim
 * commits before the work, the outcome after it), until a claim finds nothing. The LIMIT is
 * written into the statement, as on SQLite. Returns how many rows it acked. Several connections
 * may drain one table at once, each under its own name.
 */
export async function pgCeilingDrain(sql: Sql, worker: string, batch: number): Promise<number> {
  const claim = `UPDATE jobs SET status = 'running', lock_by = $1, attempts = attempts + 1
    WHERE id IN (SELECT id FROM jobs WHERE queue = 'bench' AND status = 'pending' AND run_at <= $2
                 ORDER BY priority DESC, run_at, id LIMIT ${batch} FOR UPDATE SKIP LOCKED)
    RETURNING id`;
  const ack = `UPDATE jobs SET status = 'done', done_at = $1, result = NULL
    WHERE id = ANY($2::text[]) AND status = 'running' AND lock_by = $3`;
  const now = Date.now();
  let done = 0;
  while (true) {
    const rows = await sql.unsafe<{ id: string }[]>(claim, [worker, now], { prepare: true });
    if (rows.length === 0) return done;
    const claimed = rows.map((row) => row.id);
    const acked = (await sql.unsafe(ack, [now, claimed as never, worker], { prepare: true }))
      .count;
    if (acked !== claimed.length) {
      throw new Error(`the ceiling drain acked ${acked} of the ${claimed.length} rows it claimed`);
    }
    done += acked;
  }
}

/** Throws unless every row of the ceiling's table is done. */
async function assertDrained(sql: Sql): Promise<void> {
  const [row] = await sql<{ n: string }[]>`SELECT count(*) AS n FROM jobs WHERE status <> 'done'`;
  if (Number(row?.n) !== 0) throw new Error(`the ceiling drain left ${row?.n} rows not done`);
}

/** Drains `n` preloaded rows in batches of `batch` with {@linkcode pgCeilingDrain}; rows/s. */
export function pgCeilingClaimAck(
  server: PostgresServer,
  n: number,
  batch: number,
): Promise<number> {
  return withRawTable(server, async (sql) => {
    await preload(sql, n);
    const start = performance.now();
    const done = await pgCeilingDrain(sql, "w", batch);
    const elapsed = performance.now() - start;
    if (done !== n) throw new Error(`the ceiling drain stalled at ${done} of ${n}`);
    await assertDrained(sql);
    return rate(n, elapsed);
  }, null);
}

/**
 * Not a ceiling but the floor under the queue's drain: its own schema and statements, with no
 * worker. Drains `n` pushed tasks with the backend's flush (`workerFlush`, as the worker calls
 * it): each acks the previous batch (fenced by attempt, with the outcome counts) and claims the
 * next `batch` into `running`, in one round trip and one transaction. What separates this from
 * `pgCeilingClaimAck` is the work the data model asks of PostgreSQL (and one commit per batch
 * instead of two); what separates the drain from this is the worker.
 */
export async function pgQueueSqlClaimAck(
  target: BenchTarget,
  n: number,
  batch: number,
): Promise<number> {
  await using temp = await target.fresh();
  const storage = temp.storage<Email>();
  await storage.pushAll(Array.from({ length: n }, (_, i) => new Task(email(i))));
  const { backend } = storage;
  const textArgs = storage.codec.decodeText !== undefined;
  let acks: FlushAck[] = [];
  let done = 0;
  const start = performance.now();
  while (true) {
    const flushed = await backend.workerFlush({
      queue: QUEUE,
      worker: "bench",
      acks,
      start: [],
      claim: { direct: batch, ahead: 0, textArgs },
    });
    if (flushed.fenced.size > 0) throw new Error("an ack was fenced off");
    done += acks.length;
    if (flushed.running.length === 0) break;
    const now = Date.now();
    acks = flushed.running.map((row) => ({
      ack: {
        id: row.id,
        queue: row.queue,
        attempt: row.attempts,
        status: "done",
        result: null,
        error: null,
        retryInMs: null,
        doneAt: now,
      },
    }));
  }
  const elapsed = performance.now() - start;
  if (done !== n) throw new Error(`the queue's SQL drained ${done} of ${n} tasks`);
  return rate(n, elapsed);
}

/** The raw ceiling's drain by several processes, each with one connection of its own. */
export function pgRawDrain(server: PostgresServer): RawDrain {
  return {
    async preload(n) {
      const db = await server.createDatabase();
      const sql = rawClient(db.url);
      const dispose = async () => {
        await sql.end({ timeout: 5 });
        await db[Symbol.asyncDispose]();
      };
      try {
        await preload(sql, n);
      } catch (error) {
        await dispose();
        throw error;
      }
      return {
        location: db.url,
        assertDrained: () => assertDrained(sql),
        [Symbol.asyncDispose]: dispose,
      };
    },
    async warmUp(n) {
      await pgCeilingClaimAck(server, n, CEILING_BATCH);
    },
    async connect(location) {
      const sql = rawClient(location);
      await sql`SELECT 1`; // connected before the clock starts
      return {
        drain: (worker) => pgCeilingDrain(sql, worker, CEILING_BATCH),
        close: () => sql.end({ timeout: 5 }),
      };
    },
  };
}
