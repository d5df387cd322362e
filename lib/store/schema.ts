import type { Database } from "../sqlite/types.ts";

/** The schema version this build of the library writes and understands. */
export const SCHEMA_VERSION = 1;

/** Thrown when a database was written by a newer version of the library. */
export class SchemaVersionError extends Error {
  /**
   * @param path the database file
   * @param found the version recorded in the file
   * @param supported the newest version this library knows
   */
  constructor(path: string, found: number, supported: number) {
    super(
      `Cannot use database '${path}': its schema version is ${found}, but this version of apalis-sqlite supports up to ${supported}; upgrade the library`,
    );
    this.name = "SchemaVersionError";
  }
}

// Every table is prefixed: the queue often shares a file with the application's own tables.
const MIGRATIONS: readonly string[] = [
  // 1: tasks, workers
  `CREATE TABLE apalis_tasks (
     id           TEXT PRIMARY KEY,
     queue        TEXT NOT NULL,
     status       TEXT NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending','queued','running','done','failed','killed')),
     args         BLOB NOT NULL,
     attempts     INTEGER NOT NULL DEFAULT 0,
     max_attempts INTEGER NOT NULL DEFAULT 5,
     priority     INTEGER NOT NULL DEFAULT 0,
     run_at       INTEGER NOT NULL,
     created_at   INTEGER NOT NULL,
     lock_by      TEXT,
     lock_at      INTEGER,
     done_at      INTEGER,
     last_result  BLOB,
     last_error   TEXT,
     meta         TEXT,
     backoff      TEXT
   ) WITHOUT ROWID;
   -- Three partial indexes, one per phase of a task's life, so that a push or a state change
   -- touches as few index pages as possible (each page is written to the WAL at commit).
   -- Waiting tasks, in claim order; the claim query stops after LIMIT entries. status rides
   -- along so that counting pending and failed tasks never reads the table.
   CREATE INDEX apalis_tasks_claim ON apalis_tasks (queue, priority DESC, run_at, id, status)
     WHERE status IN ('pending','failed');
   -- Tasks held by a worker: orphan rescue and shutdown release look them up by holder.
   CREATE INDEX apalis_tasks_locked ON apalis_tasks (lock_by, queue, status)
     WHERE status IN ('queued','running');
   -- Tasks that ran: listings newest first (entries carry the id) and counts per state.
   CREATE INDEX apalis_tasks_finished ON apalis_tasks (queue, status, id)
     WHERE status IN ('done','failed','killed');
   CREATE TABLE apalis_workers (
     name        TEXT PRIMARY KEY,
     queue       TEXT NOT NULL,
     instance_id TEXT NOT NULL,
     host        TEXT NOT NULL,
     pid         INTEGER NOT NULL,
     started_at  INTEGER NOT NULL,
     last_seen   INTEGER NOT NULL,
     stopped_at  INTEGER,
     concurrency INTEGER NOT NULL DEFAULT 1
   );`,
];

/** Reads the schema version of a database: 0 when it was never set up. */
export function schemaVersion(db: Database): number {
  const table = db.get<{ n: number }>(
    "SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table' AND name = 'apalis_schema'",
  );
  if (!table || table.n === 0) return 0;
  return db.get<{ version: number }>("SELECT version FROM apalis_schema")?.version ?? 0;
}

/**
 * Creates or upgrades the queue's tables. Idempotent; concurrent callers in several processes
 * are safe (each migration runs in one immediate transaction and re-checks the version).
 */
export function migrate(db: Database): number {
  const current = schemaVersion(db);
  if (current > SCHEMA_VERSION) throw new SchemaVersionError(db.path, current, SCHEMA_VERSION);
  if (current === SCHEMA_VERSION) return current;
  return db.transaction(() => {
    db.exec("CREATE TABLE IF NOT EXISTS apalis_schema (version INTEGER NOT NULL)");
    let version = db.get<{ version: number }>("SELECT version FROM apalis_schema")?.version;
    if (version === undefined) {
      db.run("INSERT INTO apalis_schema (version) VALUES (0)");
      version = 0;
    }
    if (version > SCHEMA_VERSION) throw new SchemaVersionError(db.path, version, SCHEMA_VERSION);
    for (let next = version + 1; next <= SCHEMA_VERSION; next++) {
      db.exec(MIGRATIONS[next - 1]!);
    }
    db.run("UPDATE apalis_schema SET version = ?", [SCHEMA_VERSION]);
    return SCHEMA_VERSION;
  });
}
