import {
  type Database,
  DatabaseFileError,
  type Durability,
  type SqlRow,
  type SqlValue,
} from "../../mod.ts";

/**
 * A database that works through a read-only connection until a statement needs to write, and
 * from then on through a writable connection that it opens at that moment (closing the
 * read-only one). The board's pages only read, so a board that is only looked at never opens
 * the file for writing; its retry, kill and delete buttons write.
 *
 * A statement that fails on the read-only connection because it would write runs again on the
 * writable one: SQLite refuses a write before it changes anything, so nothing runs twice.
 *
 * @example Usage
 * ```ts ignore
 * const db = new WritableOnDemand(openDatabase(path, { readOnly: true }), () => openDatabase(path));
 * db.get("SELECT count(*) AS n FROM apalis_tasks"); // read-only
 * db.run("DELETE FROM apalis_tasks WHERE id = ?", [id]); // opens the writable connection
 * ```
 */
export class WritableOnDemand implements Database {
  readonly path: string;
  readonly driver: "node:sqlite" | "bun:sqlite";
  readonly durability: Durability;
  readonly busyRetryMs: number;
  readonly busyTimeoutMs: number;
  #reader: Database | undefined;
  #writer: Database | undefined;
  #openWriter: () => Database;

  /**
   * @param reader a read-only connection
   * @param openWriter opens a writable connection to the same file, the first time one is needed
   */
  constructor(reader: Database, openWriter: () => Database) {
    this.#reader = reader;
    this.#openWriter = openWriter;
    this.path = reader.path;
    this.driver = reader.driver;
    this.durability = reader.durability;
    this.busyRetryMs = reader.busyRetryMs;
    this.busyTimeoutMs = reader.busyTimeoutMs;
  }

  /** Whether the writable connection was opened. */
  get writable(): boolean {
    return this.#writer !== undefined;
  }

  get inTransaction(): boolean {
    return this.#current().inTransaction;
  }

  get closed(): boolean {
    return this.#current().closed;
  }

  exec(sql: string): void {
    this.#use((db) => db.exec(sql));
  }

  run(sql: string, params?: readonly SqlValue[]): { changes: number } {
    return this.#use((db) => db.run(sql, params));
  }

  get<T = SqlRow>(sql: string, params?: readonly SqlValue[]): T | undefined {
    return this.#use((db) => db.get<T>(sql, params));
  }

  all<T = SqlRow>(sql: string, params?: readonly SqlValue[]): T[] {
    return this.#use((db) => db.all<T>(sql, params));
  }

  values<T extends unknown[] = unknown[]>(sql: string, params?: readonly SqlValue[]): T[] {
    return this.#use((db) => db.values<T>(sql, params));
  }

  transaction<T>(fn: () => T): T {
    return this.#use((db) => db.transaction(fn));
  }

  close(): void {
    this.#writer?.close();
    this.#reader?.close();
  }

  #current(): Database {
    return this.#writer ?? this.#reader!;
  }

  #use<T>(operation: (db: Database) => T): T {
    const db = this.#current();
    try {
      return operation(db);
    } catch (error) {
      // Inside a transaction of the reader the statement cannot move: let the transaction fail.
      if (
        db !== this.#reader || db.inTransaction ||
        DatabaseFileError.problemOf(error) !== "read-only"
      ) {
        throw error;
      }
    }
    const writer = this.#openWriter();
    this.#writer = writer;
    this.#reader = undefined;
    db.close();
    return operation(writer);
  }
}
