import { toFileError } from "../sqlite/file_error.ts";
import { migrate, schemaVersion } from "../store/schema.ts";
import { openDatabase } from "../sqlite/open.ts";
import type { Database, OpenDatabaseOptions } from "../sqlite/types.ts";
import { SqliteBackend } from "../store/backend.ts";
import { Admin, type AdminOptions } from "./admin.ts";
import type { Codec } from "./codec.ts";
import type { Config } from "./config.ts";
import { DuplicateTaskError } from "./errors.ts";
import { Storage, type StorageOptions } from "./storage.ts";
import type { PushOptions } from "./task.ts";

export type { ListRunsOptions, ListTasksOptions, ThroughputPoint } from "./admin.ts";

/** Options for {@linkcode SqliteStorage}. */
export type SqliteStorageOptions = StorageOptions;

/**
 * A queue in a SQLite file: push tasks, inspect and repair them. Workers consume it
 * (see `WorkerBuilder`). Many storages (queues) can share one {@linkcode Database}.
 *
 * @typeParam T the arguments' type
 * @example Usage
 * ```ts
 * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
 *
 * const db = openDatabase(":memory:");
 * SqliteStorage.setup(db);
 * const emails = new SqliteStorage<{ to: string }>(db, "email");
 * const id = await emails.push({ to: "a@b.c" }, { priority: 1 });
 * const task = await emails.fetchById(id);
 * if (task?.status !== "pending") throw new Error("unexpected");
 * db.close();
 * ```
 */
export class SqliteStorage<T = unknown> extends Storage<T> {
  /** The connection. */
  readonly db: Database;

  /**
   * @param db an open database (see `openDatabase`), set up with {@linkcode SqliteStorage.setup}
   * @param queue the queue name (non-empty, no NUL character), or a {@linkcode Config}
   * @param options codec and clock
   */
  constructor(
    db: Database,
    queue: string | Config = "default",
    options: SqliteStorageOptions = {},
  ) {
    super(SqliteBackend.of(db), queue, options);
    this.db = db;
  }

  /**
   * Creates or upgrades the queue's tables; idempotent. Returns the schema version. Refuses a
   * database written by a newer version of the library (`SchemaVersionError`).
   */
  static setup(db: Database): number {
    try {
      return migrate(db);
    } catch (error) {
      throw toFileError(db.path, error, "set up the queue tables");
    }
  }

  /**
   * The schema version of a database's queue tables: 0 when it has none (never set up). Reads
   * only, so it works on a read-only connection.
   *
   * @example Usage
   * ```ts
   * import { openDatabase, SCHEMA_VERSION, SqliteStorage } from "@apalis/sqlite";
   *
   * const db = openDatabase(":memory:");
   * if (SqliteStorage.schemaVersion(db) !== 0) throw new Error("unexpected");
   * SqliteStorage.setup(db);
   * if (SqliteStorage.schemaVersion(db) !== SCHEMA_VERSION) throw new Error("unexpected");
   * db.close();
   * ```
   */
  static schemaVersion(db: Database): number {
    return schemaVersion(db);
  }

  /**
   * The database-wide view of a connection, across its queues: what the dashboard and the CLI
   * use (see {@linkcode Admin}).
   *
   * @example Usage
   * ```ts
   * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
   *
   * const db = openDatabase(":memory:");
   * SqliteStorage.setup(db);
   * const admin = SqliteStorage.admin(db);
   * if ((await admin.stats()).total !== 0) throw new Error("unexpected");
   * db.close();
   * ```
   */
  static admin(db: Database, options: AdminOptions = {}): Admin {
    return new Admin(SqliteBackend.of(db), options);
  }

  /**
   * Opens `path` on a new connection and returns a storage on it: the seed's event-driven
   * `new_with_callback`. Every storage wakes its idle workers at once for pushes in this process,
   * and within milliseconds for commits by other processes (a watch on the WAL file and SQLite's
   * `data_version`), so this is the same storage with its own connection. Call
   * `SqliteStorage.setup(storage.db)` before use, and `storage.db.close()` when done.
   *
   * @example Usage
   * ```ts
   * import { Config, IntervalStrategy, SqliteStorage } from "@apalis/sqlite";
   *
   * const config = new Config("queue").withPollInterval(new IntervalStrategy(5000));
   * const backend = SqliteStorage.newWithCallback<number>(":memory:", config);
   * SqliteStorage.setup(backend.db);
   * backend.db.close();
   * ```
   */
  static newWithCallback<T>(
    path: string,
    config: string | Config = "default",
    options: SqliteStorageOptions & OpenDatabaseOptions = {},
  ): SqliteStorage<T> {
    return new SqliteStorage<T>(openDatabase(path, options), config, options);
  }

  /** A storage for `queue` (the seed's `new_in_queue`). */
  static newInQueue<T>(
    db: Database,
    queue: string,
    options?: SqliteStorageOptions,
  ): SqliteStorage<T> {
    return new SqliteStorage<T>(db, queue, options);
  }

  /** The same queue with another codec. */
  withCodec(codec: Codec): SqliteStorage<T> {
    const options: SqliteStorageOptions = { codec, clock: this.clock };
    if (this.shared) options.shared = this.shared;
    return new SqliteStorage<T>(this.db, this.config, options);
  }

  /** The same storage for another queue, sharing connection, codec and clock. */
  forQueue<U = unknown>(queue: string): SqliteStorage<U> {
    return new SqliteStorage<U>(this.db, this.config.withQueue(queue), {
      codec: this.codec,
      clock: this.clock,
    });
  }

  /**
   * Enqueues one task synchronously on this connection, so it commits or rolls back with the
   * caller's own transaction. Call it inside `db.transaction(() => …)` (or your own
   * `BEGIN … COMMIT`) on the same `db`. With `unique`, a duplicate inserts nothing and returns
   * the earlier task's id (compare it with an `id` you set to tell them apart).
   *
   * @example Enqueue atomically with your own write
   * ```ts
   * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
   *
   * const db = openDatabase(":memory:");
   * SqliteStorage.setup(db);
   * db.exec("CREATE TABLE users (email TEXT)");
   * const welcome = new SqliteStorage<string>(db, "welcome");
   * db.transaction(() => {
   *   db.run("INSERT INTO users (email) VALUES (?)", ["a@b.c"]);
   *   welcome.pushSync("a@b.c");
   * });
   * db.close();
   * ```
   */
  pushSync(args: T, options: PushOptions = {}): string {
    const row = this.taskRow(args, options);
    const backend = this.backend as SqliteBackend;
    let inserted: { duplicate: boolean; existing?: string };
    try {
      inserted = backend.insertInTransaction(row);
    } catch (error) {
      throw toFileError(this.db.path, error, `push task to queue '${this.queue}'`);
    }
    if (inserted.duplicate) throw new DuplicateTaskError(row.id, this.queue);
    if (inserted.existing !== undefined) return inserted.existing;
    backend.notifyPushed(this.queue);
    return row.id;
  }
}
