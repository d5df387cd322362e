import type { ISql } from "postgres";
import { Admin, type AdminOptions } from "../storage/admin.ts";
import type { Codec } from "../storage/codec.ts";
import type { Config } from "../storage/config.ts";
import { DuplicateTaskError } from "../storage/errors.ts";
import { Storage, type StorageOptions } from "../storage/storage.ts";
import type { PushOptions } from "../storage/task.ts";
import { PostgresBackend } from "./backend.ts";
import type { PostgresConnection } from "./connection.ts";

/** Options for {@linkcode PostgresStorage}. */
export type PostgresStorageOptions = Omit<StorageOptions, "shared">;

/**
 * A queue in a PostgreSQL database: the same queue as `SqliteStorage` (push tasks, start
 * workflow runs, inspect and repair them; `WorkerBuilder`, `Workflow` and `DagFlow` consume it
 * unchanged), for workers on several hosts. Many storages (queues) share one
 * {@linkcode PostgresConnection}.
 *
 * Without a `clock`, times come from the database server (`now()`), so hosts with skewed clocks
 * agree on what is due and on whose heartbeat is stale. Idle workers wake within milliseconds of
 * a push from any process or host (LISTEN/NOTIFY); polling stays the fallback.
 *
 * @typeParam T the arguments' type
 * @example Usage
 * ```ts ignore
 * import { WorkerBuilder } from "@apalis/sqlite";
 * import { connectPostgres, PostgresStorage } from "@apalis/sqlite/postgres";
 *
 * const pg = await connectPostgres("postgres://app@db.internal:5432/app", { max: 10 });
 * await PostgresStorage.setup(pg);
 * const emails = new PostgresStorage<{ to: string }>(pg, "email");
 * await emails.push({ to: "ada@example.com" });
 * const worker = new WorkerBuilder("mailer").backend(emails).build(async (email) => {
 *   // send it
 * });
 * await worker.run();
 * await pg.close();
 * ```
 */
export class PostgresStorage<T = unknown> extends Storage<T> {
  /** The connection. */
  readonly pg: PostgresConnection;

  /**
   * @param pg an open connection (see `connectPostgres`), set up with
   *   {@linkcode PostgresStorage.setup}
   * @param queue the queue name (non-empty, no NUL character), or a {@linkcode Config}
   * @param options codec and clock (without a clock, time comes from the database)
   */
  constructor(
    pg: PostgresConnection,
    queue: string | Config = "default",
    options: PostgresStorageOptions = {},
  ) {
    super(PostgresBackend.of(pg), queue, options);
    this.pg = pg;
  }

  /**
   * Creates or upgrades the queue's tables; idempotent, and safe when many processes run it at
   * once (they take turns on an advisory lock). Resolves to the schema version. Refuses a
   * database written by a newer version of the library (`SchemaVersionError`).
   */
  static setup(pg: PostgresConnection): Promise<number> {
    return PostgresBackend.of(pg).setup();
  }

  /**
   * The schema version of the database: 0 when it has no apalis tables, else the version that
   * {@linkcode PostgresStorage.setup} left (`POSTGRES_SCHEMA_VERSION` when it is this
   * library's). It only reads, so it works on a read-only connection.
   *
   * @example Check a database without setting it up
   * ```ts ignore
   * import { connectPostgres, POSTGRES_SCHEMA_VERSION, PostgresStorage } from "@apalis/sqlite/postgres";
   *
   * const pg = await connectPostgres("postgres://app@localhost:5432/app", { readOnly: true });
   * const version = await PostgresStorage.schemaVersion(pg);
   * if (version !== POSTGRES_SCHEMA_VERSION) throw new Error(`schema version ${version}`);
   * await pg.close();
   * ```
   */
  static schemaVersion(pg: PostgresConnection): Promise<number> {
    return PostgresBackend.of(pg).schemaVersion();
  }

  /** The database-wide view of a connection, across its queues (see {@linkcode Admin}). */
  static admin(pg: PostgresConnection, options: AdminOptions = {}): Admin {
    return new Admin(PostgresBackend.of(pg), options);
  }

  /** The same queue with another codec (and the same source of time). */
  withCodec(codec: Codec): PostgresStorage<T> {
    return new PostgresStorage<T>(this.pg, this.config, { codec, ...this.#clockOption() });
  }

  /** The same storage for another queue, sharing connection, codec and source of time. */
  forQueue<U = unknown>(queue: string): PostgresStorage<U> {
    return new PostgresStorage<U>(this.pg, this.config.withQueue(queue), {
      codec: this.codec,
      ...this.#clockOption(),
    });
  }

  /** The clock to pass on: none when time comes from the database. */
  #clockOption(): PostgresStorageOptions {
    return this.databaseTime ? {} : { clock: this.clock };
  }

  /**
   * Enqueues one task inside your own transaction, so that it commits or rolls back with your
   * writes: `tx` is the transaction of `pg.sql.begin(async (tx) => …)` on this storage's
   * connection (or a `sql.begin` of your own postgres.js client on the same database). Workers
   * see the task, and wake, when the transaction commits. A duplicate id rejects with
   * `DuplicateTaskError` and, as any failed statement does, aborts the transaction. With
   * `unique`, the key is claimed in your transaction (a concurrent push of the same key waits
   * for it to end); a duplicate inserts nothing and resolves to the earlier task's id. Under
   * REPEATABLE READ or SERIALIZABLE, a key another transaction changed meanwhile fails with a
   * serialization error (40001) to retry.
   *
   * @example Enqueue atomically with your own write
   * ```ts ignore
   * import { connectPostgres, PostgresStorage } from "@apalis/sqlite/postgres";
   *
   * const pg = await connectPostgres("postgres://app@localhost:5432/app");
   * await PostgresStorage.setup(pg);
   * const welcome = new PostgresStorage<string>(pg, "welcome");
   * await pg.sql.begin(async (tx) => {
   *   await tx`INSERT INTO users (email) VALUES (${"ada@example.com"})`;
   *   await welcome.pushTx(tx, "ada@example.com");
   * });
   * await pg.close();
   * ```
   */
  async pushTx(tx: ISql, args: T, options: PushOptions = {}): Promise<string> {
    const row = this.taskRow(args, options);
    const inserted = await (this.backend as PostgresBackend).insertInTransaction(tx, row);
    if (inserted.duplicate) throw new DuplicateTaskError(row.id, this.queue);
    return inserted.existing ?? row.id;
  }
}
