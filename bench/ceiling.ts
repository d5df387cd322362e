/**
 * The raw SQLite ceiling for the queue's work: the same runtime, the same file settings
 * (`openDatabase`: WAL, the same synchronous level and cache), a table shaped like a minimal
 * queue (primary key and a partial claim index), the same payloads, and no queue library:
 * prepared statements with data made before the clock starts. The insert ceilings call the
 * runtime's SQLite driver directly (not this library's connection, whose statement cache would
 * slow them down); the drains, a statement per batch, go through `openDatabase`'s connection.
 * The queue's figures are reported as ratios to these.
 *
 * @module
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { type Database, type Durability, openDatabase, SqliteStorage, Task } from "../mod.ts";
import { type ClaimedRow, type TaskAck, taskAckMany, taskClaim } from "../lib/store/tasks.ts";
import { type Email, email, freshDatabase, payloadRows as rows, QUEUE, rate } from "./_shared.ts";

const SCHEMA = `
  CREATE TABLE jobs (
    id       TEXT PRIMARY KEY,
    queue    TEXT NOT NULL,
    status   TEXT NOT NULL DEFAULT 'pending',
    args     BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    priority INTEGER NOT NULL DEFAULT 0,
    run_at   INTEGER NOT NULL,
    lock_by  TEXT,
    done_at  INTEGER,
    result   BLOB
  );
  CREATE INDEX jobs_claim ON jobs (queue, priority DESC, run_at, id) WHERE status = 'pending';`;

const INSERT = "INSERT INTO jobs (id, queue, args, run_at) VALUES (?, 'bench', ?, ?)";

async function withFile<T>(durability: Durability, fn: (db: Database) => T): Promise<T> {
  const dir = await mkdtemp(join(os.tmpdir(), "apalis_ceiling_"));
  const db = openDatabase(join(dir, "raw.db"), { durability });
  try {
    return fn(db);
  } finally {
    db.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** A prepared statement of the runtime's own SQLite driver, called with positional values. */
interface RawStatement {
  run(...values: (string | number | Uint8Array)[]): unknown;
}

/** A connection of the runtime's own SQLite driver, with nothing of this library around it. */
interface RawConnection {
  exec(sql: string): void;
  prepare(sql: string): RawStatement;
  close(): void;
}

/**
 * Opens `path` with the driver `openDatabase` picks on this runtime (`node:sqlite`, or
 * `bun:sqlite` where the library falls back to it), directly: no statement cache, no wrapper.
 * The file gets the settings `openDatabase` gives it.
 */
async function openRaw(path: string, durability: Durability): Promise<RawConnection> {
  const probe = openDatabase(":memory:");
  const driver = probe.driver;
  probe.close();
  let db: RawConnection;
  if (driver === "bun:sqlite") {
    const { Database } = await import(["bun", "sqlite"].join(":")) as {
      Database: new (path: string) => RawConnection;
    };
    db = new Database(path);
  } else {
    const { DatabaseSync } = await import("node:sqlite");
    db = new DatabaseSync(path) as unknown as RawConnection;
  }
  db.exec(`PRAGMA journal_mode = WAL;
    PRAGMA synchronous = ${durability === "full" ? "FULL" : "NORMAL"};
    PRAGMA foreign_keys = ON;
    PRAGMA temp_store = MEMORY;
    PRAGMA cache_size = -16000;`);
  return db;
}

/**
 * Runs `fn` on a fresh file opened with {@linkcode openRaw}, after `schema` made its tables:
 * SQL, or a function given the file's path (it must close what it opens).
 */
async function withRawTable<T>(
  durability: Durability,
  fn: (db: RawConnection) => T,
  schema: string | ((path: string) => void) = SCHEMA,
): Promise<T> {
  const dir = await mkdtemp(join(os.tmpdir(), "apalis_ceiling_"));
  const path = join(dir, "raw.db");
  if (typeof schema === "function") schema(path);
  const db = await openRaw(path, durability);
  try {
    if (typeof schema === "string") db.exec(schema);
    return fn(db);
  } finally {
    db.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * One INSERT per transaction (autocommit), `n` times, through the driver's own prepared
 * statement with the rows made before the clock starts.
 */
export function ceilingInsertOne(durability: Durability, n: number): Promise<number> {
  const data = rows(n);
  return withRawTable(durability, (db) => {
    const insert = db.prepare(INSERT);
    const now = Date.now();
    const start = performance.now();
    for (const [id, args] of data) insert.run(id, args, now);
    return rate(n, performance.now() - start);
  });
}

/**
 * INSERTs in transactions of `batch` rows, through the driver's own prepared statement with the
 * rows made before the clock starts.
 */
export function ceilingInsertBatch(
  durability: Durability,
  n: number,
  batch: number,
): Promise<number> {
  const data = rows(n);
  return withRawTable(durability, (db) => {
    const insert = db.prepare(INSERT);
    return insertInBatches(db, data, batch, (id, args, now) => insert.run(id, args, now));
  });
}

/**
 * Runs `insert` for each row in transactions of `batch`, with one time for all; rows/s. The
 * clock starts here: the rows and the statement are made before.
 */
function insertInBatches(
  db: RawConnection,
  data: readonly [string, Uint8Array][],
  batch: number,
  insert: (id: string, args: Uint8Array, now: number) => unknown,
): number {
  const now = Date.now();
  const start = performance.now();
  for (let first = 0; first < data.length; first += batch) {
    db.exec("BEGIN IMMEDIATE");
    for (let i = first; i < Math.min(data.length, first + batch); i++) {
      const [id, args] = data[i]!;
      insert(id, args, now);
    }
    db.exec("COMMIT");
  }
  return rate(data.length, performance.now() - start);
}

/**
 * Not a ceiling but the floor under `pushAll`: the queue's own table (`SqliteStorage.setup`),
 * filled as {@linkcode ceilingInsertBatch} fills the ceiling's (the driver's own prepared INSERT
 * of a plain task's columns, rows made before the clock starts, transactions of `batch`). What
 * separates this from the ceiling is what the data model asks of SQLite per row (its unique text
 * id and its claim index); what separates `pushAll` from this is the library.
 */
export function queueSqlInsert(durability: Durability, n: number, batch: number): Promise<number> {
  const data = rows(n);
  return withRawTable(durability, (db) => {
    const insert = db.prepare(
      `INSERT INTO apalis_tasks (id, queue, args, max_attempts, priority, run_at, created_at)
       VALUES (?, '${QUEUE}', ?, 5, 0, ?, ?)`,
    );
    return insertInBatches(db, data, batch, (id, args, now) => insert.run(id, args, now, now));
  }, (path) => {
    const setup = openDatabase(path, { durability });
    SqliteStorage.setup(setup);
    setup.close();
  });
}

/** Creates the ceiling's table in `db` and fills it with `n` due rows in one transaction. */
export function ceilingPreload(db: Database, n: number): void {
  db.exec(SCHEMA);
  const data = rows(n);
  const now = Date.now();
  db.transaction(() => {
    for (const [id, args] of data) db.run(INSERT, [id, args, now]);
  });
}

/**
 * Drains the due rows of a preloaded table as `worker`: claims `batch` in one statement and
 * transaction (`UPDATE … WHERE id IN (SELECT … LIMIT batch) RETURNING id`), then acks them in
 * another (`WHERE id IN (SELECT value FROM json_each(?))`), as a durable queue must (the claim
 * commits before the work, the outcome after it), until a claim finds nothing. The LIMIT is
 * written into the statement: SQLite plans with a bound LIMIT, so binding it again would prepare
 * the statement anew at every claim. Returns how many rows it acked. Several processes may drain
 * one file at once, each under its own name (the connection waits for the lock in SQLite's
 * busy handler).
 */
export function ceilingDrain(db: Database, worker: string, batch: number): number {
  const claim = `UPDATE jobs SET status = 'running', lock_by = ?, attempts = attempts + 1
    WHERE id IN (SELECT id FROM jobs WHERE queue = 'bench' AND status = 'pending' AND run_at <= ?
                 ORDER BY priority DESC, run_at, id LIMIT ${batch})
    RETURNING id`;
  const ack = `UPDATE jobs SET status = 'done', done_at = ?, result = NULL
    WHERE id IN (SELECT value FROM json_each(?)) AND status = 'running' AND lock_by = ?`;
  const now = Date.now();
  let done = 0;
  while (true) {
    const claimed = db.all<{ id: string }>(claim, [worker, now]).map((row) => row.id);
    if (claimed.length === 0) return done;
    const acked = db.run(ack, [now, JSON.stringify(claimed), worker]).changes;
    if (acked !== claimed.length) {
      throw new Error(`the ceiling drain acked ${acked} of the ${claimed.length} rows it claimed`);
    }
    done += acked;
  }
}

/** Throws unless every row of the ceiling's table is done. */
export function ceilingAssertDrained(db: Database): void {
  const left = db.get<{ n: number }>("SELECT count(*) AS n FROM jobs WHERE status <> 'done'");
  if (left?.n !== 0) throw new Error(`the ceiling drain left ${left?.n} rows not done`);
}

/** Drains `n` preloaded rows in batches of `batch` with {@linkcode ceilingDrain}. */
export function ceilingClaimAck(durability: Durability, n: number, batch: number): Promise<number> {
  return withFile(durability, (db) => {
    ceilingPreload(db, n);
    const start = performance.now();
    const done = ceilingDrain(db, "w", batch);
    const elapsed = performance.now() - start;
    if (done !== n) throw new Error(`the ceiling drain stalled at ${done} of ${n}`);
    ceilingAssertDrained(db);
    return rate(n, elapsed);
  });
}

/**
 * Not a ceiling but the floor under the queue's drain: its own schema and statements, with no
 * worker. Drains `n` pushed tasks in transactions that each ack the previous batch (the
 * worker's batched, fenced ack, with the outcome count) and claim the next `batch` into
 * `running`, as the worker's flush does. What separates this from `ceilingClaimAck` is the
 * work the data model asks of SQLite; what separates the drain from this is the worker.
 */
export async function queueSqlClaimAck(
  durability: Durability,
  n: number,
  batch: number,
): Promise<number> {
  await using temp = await freshDatabase(durability);
  const { db } = temp;
  await new SqliteStorage<Email>(db, QUEUE).pushAll(
    Array.from({ length: n }, (_, i) => new Task(email(i))),
  );
  let claimed: ClaimedRow[] = [];
  let done = 0;
  const start = performance.now();
  while (true) {
    const now = Date.now();
    const acks: TaskAck[] = claimed.map((row) => ({
      id: row.id,
      queue: row.queue,
      attempt: row.attempts,
      status: "done",
      result: null,
      error: null,
      runAt: null,
      doneAt: now,
    }));
    claimed = db.transaction(() => {
      if (taskAckMany(db, "bench", acks).size > 0) throw new Error("an ack was fenced off");
      return taskClaim(db, { queue: QUEUE, worker: "bench", now, limit: batch });
    });
    done += acks.length;
    if (claimed.length === 0) break;
  }
  const elapsed = performance.now() - start;
  if (done !== n) throw new Error(`the queue's SQL drained ${done} of ${n} tasks`);
  return rate(n, elapsed);
}
