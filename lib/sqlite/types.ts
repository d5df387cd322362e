/** A value bound to, or read from, SQLite. */
export type SqlValue = string | number | bigint | Uint8Array | null;

/** A row as returned by the driver: column name to value. */
export type SqlRow = Record<string, SqlValue>;

/** How hard commits are pushed to disk. */
export type Durability = "normal" | "full";

/** Options for {@linkcode openDatabase}. */
export interface OpenDatabaseOptions {
  /**
   * `"normal"` runs WAL with `synchronous=NORMAL`: a crash of the process loses nothing, a power
   * loss may lose the last commits. `"full"` adds an fsync per commit: nothing committed is lost.
   * @default {"normal"}
   */
  durability?: Durability;
  /**
   * How long the driver itself waits for a lock before it reports busy. Kept short on purpose: a
   * synchronous wait freezes the event loop, so writes retry busy errors asynchronously instead.
   * @default {5}
   */
  busyTimeoutMs?: number;
  /**
   * How long a write keeps retrying a busy database before it gives up with a {@linkcode DatabaseBusyError}.
   * Opening the file and `SqliteStorage.setup` wait as long (blocking, as they are synchronous)
   * when other processes open or set up the same file at the same moment.
   * @default {60000}
   */
  busyRetryMs?: number;
  /**
   * Opens the file read-only: no setup, no writes, and a file that does not exist is not created.
   * The connection sees other connections' commits as they happen. To read a WAL database whose
   * `-wal` and `-shm` files are missing, SQLite creates them (so a read-only directory cannot be
   * read); `close()` removes them again when no other connection has the file open.
   * @default {false}
   */
  readOnly?: boolean;
}

/**
 * The small synchronous connection every layer above talks to. One per process and file.
 * Positional `?` parameters only; statements are cached by SQL text.
 */
export interface Database {
  /** The file path, or `":memory:"`. */
  readonly path: string;
  /** Which built-in serves this connection. */
  readonly driver: "node:sqlite" | "bun:sqlite";
  /** The durability the connection was opened with. */
  readonly durability: Durability;
  /** How long async writes keep retrying a busy database, in milliseconds. */
  readonly busyRetryMs: number;
  /** How long the driver itself waits for a lock before it reports busy, in milliseconds. */
  readonly busyTimeoutMs: number;
  /** Runs one or more statements without parameters (DDL, PRAGMA). */
  exec(sql: string): void;
  /** Runs a statement and reports how many rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): { changes: number };
  /** Runs a statement and returns its first row. */
  get<T = SqlRow>(sql: string, params?: readonly SqlValue[]): T | undefined;
  /** Runs a statement and returns every row. */
  all<T = SqlRow>(sql: string, params?: readonly SqlValue[]): T[];
  /**
   * Runs a statement and returns every row as an array of its columns, in order: cheaper than
   * `all` for many rows of many columns.
   */
  values<T extends unknown[] = unknown[]>(sql: string, params?: readonly SqlValue[]): T[];
  /**
   * Runs `fn` inside `BEGIN IMMEDIATE … COMMIT` (rolled back if it throws). Inside an open
   * transaction it runs `fn` in a savepoint instead, so calls nest.
   */
  transaction<T>(fn: () => T): T;
  /** Whether a transaction is open on this connection. */
  readonly inTransaction: boolean;
  /** Closes the connection; later calls throw. Safe to call twice. */
  close(): void;
  /** Whether {@linkcode Database.close} was called. */
  readonly closed: boolean;
}
