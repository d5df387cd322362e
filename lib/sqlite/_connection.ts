import type { Database, Durability, SqlRow, SqlValue } from "./types.ts";

/** What an adapter provides: a prepared statement runner over one native connection. */
export interface NativeStatement {
  run(params: readonly SqlValue[]): { changes: number };
  get(params: readonly SqlValue[]): SqlRow | undefined;
  all(params: readonly SqlValue[]): SqlRow[];
}

/** The native connection behind an adapter. */
export interface NativeConnection {
  exec(sql: string): void;
  prepare(sql: string): NativeStatement;
  close(): void;
}

const STATEMENT_CACHE_LIMIT = 256;

/** Shared behaviour of both adapters: statement cache, transactions, closed checks. */
export class Connection implements Database {
  readonly path: string;
  readonly driver: "node:sqlite" | "bun:sqlite";
  readonly durability: Durability;
  readonly busyRetryMs: number;
  #native: NativeConnection;
  #statements = new Map<string, NativeStatement>();
  #depth = 0;
  #closed = false;

  constructor(
    native: NativeConnection,
    info: {
      path: string;
      driver: "node:sqlite" | "bun:sqlite";
      durability: Durability;
      busyRetryMs: number;
    },
  ) {
    this.#native = native;
    this.path = info.path;
    this.driver = info.driver;
    this.durability = info.durability;
    this.busyRetryMs = info.busyRetryMs;
  }

  get inTransaction(): boolean {
    return this.#depth > 0;
  }

  get closed(): boolean {
    return this.#closed;
  }

  exec(sql: string): void {
    this.#open().exec(sql);
  }

  run(sql: string, params: readonly SqlValue[] = []): { changes: number } {
    return this.#statement(sql).run(params);
  }

  get<T = SqlRow>(sql: string, params: readonly SqlValue[] = []): T | undefined {
    return this.#statement(sql).get(params) as T | undefined;
  }

  all<T = SqlRow>(sql: string, params: readonly SqlValue[] = []): T[] {
    return this.#statement(sql).all(params) as T[];
  }

  transaction<T>(fn: () => T): T {
    const native = this.#open();
    if (this.#depth > 0) return this.#savepoint(fn);
    native.exec("BEGIN IMMEDIATE");
    this.#depth = 1;
    try {
      const result = fn();
      if (result instanceof Promise) {
        throw new TypeError(
          "Cannot run an async function in a transaction: SQLite transactions must not span an await",
        );
      }
      native.exec("COMMIT");
      return result;
    } catch (error) {
      try {
        native.exec("ROLLBACK");
      } catch {
        // The transaction may already be gone (SQLite rolls back on some errors by itself).
      }
      throw error;
    } finally {
      this.#depth = 0;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#statements.clear();
    this.#native.close();
  }

  #savepoint<T>(fn: () => T): T {
    const native = this.#open();
    const name = `apalis_${this.#depth}`;
    native.exec(`SAVEPOINT ${name}`);
    this.#depth++;
    try {
      const result = fn();
      native.exec(`RELEASE ${name}`);
      return result;
    } catch (error) {
      native.exec(`ROLLBACK TO ${name}`);
      native.exec(`RELEASE ${name}`);
      throw error;
    } finally {
      this.#depth--;
    }
  }

  #open(): NativeConnection {
    if (this.#closed) throw new Error(`Cannot use database '${this.path}': it is closed`);
    return this.#native;
  }

  #statement(sql: string): NativeStatement {
    const native = this.#open();
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      if (this.#statements.size >= STATEMENT_CACHE_LIMIT) {
        const oldest = this.#statements.keys().next().value as string;
        this.#statements.delete(oldest);
      }
      statement = native.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }
}
