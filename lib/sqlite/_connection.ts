import { toFileError } from "./file_error.ts";
import { toSchemaMissing } from "./schema_missing.ts";
import type { Database, Durability, SqlRow, SqlValue } from "./types.ts";

/** What an adapter provides: a prepared statement runner over one native connection. */
export interface NativeStatement {
  run(params: readonly SqlValue[]): { changes: number };
  get(params: readonly SqlValue[]): SqlRow | undefined;
  all(params: readonly SqlValue[]): SqlRow[];
  values(params: readonly SqlValue[]): unknown[][];
  /** Frees the statement now, where the driver needs it (bun:sqlite); later calls must not use it. */
  finalize?(): void;
}

/** The native connection behind an adapter. */
export interface NativeConnection {
  exec(sql: string): void;
  prepare(sql: string): NativeStatement;
  /** Whether SQLite has a transaction open (false after it rolled one back by itself). */
  readonly inTransaction: boolean;
  close(): void;
}

const STATEMENT_CACHE_LIMIT = 256;

/** Shared behaviour of both adapters: statement cache, transactions, closed checks. */
export class Connection implements Database {
  readonly path: string;
  readonly driver: "node:sqlite" | "bun:sqlite";
  readonly durability: Durability;
  readonly busyRetryMs: number;
  readonly busyTimeoutMs: number;
  #native: NativeConnection;
  #statements = new Map<string, NativeStatement>();
  #depth = 0;
  /** The error after which SQLite rolled back the open transaction by itself (e.g. a full disk). */
  #abortCause: unknown;
  #aborted = false;
  #closed = false;
  #afterClose: (() => void) | undefined;

  constructor(
    native: NativeConnection,
    info: {
      path: string;
      driver: "node:sqlite" | "bun:sqlite";
      durability: Durability;
      busyRetryMs: number;
      busyTimeoutMs: number;
      /** Runs once the native connection is closed (it must not throw). */
      afterClose?: () => void;
    },
  ) {
    this.#native = native;
    this.#afterClose = info.afterClose;
    this.path = info.path;
    this.driver = info.driver;
    this.durability = info.durability;
    this.busyRetryMs = info.busyRetryMs;
    this.busyTimeoutMs = info.busyTimeoutMs;
  }

  get inTransaction(): boolean {
    return this.#depth > 0;
  }

  get closed(): boolean {
    return this.#closed;
  }

  exec(sql: string): void {
    const native = this.#open();
    try {
      native.exec(sql);
    } catch (error) {
      throw this.#failed(error);
    }
  }

  run(sql: string, params: readonly SqlValue[] = []): { changes: number } {
    const statement = this.#statement(sql);
    try {
      return statement.run(params);
    } catch (error) {
      throw this.#failed(error);
    }
  }

  get<T = SqlRow>(sql: string, params: readonly SqlValue[] = []): T | undefined {
    const statement = this.#statement(sql);
    try {
      return statement.get(params) as T | undefined;
    } catch (error) {
      throw this.#failed(error);
    }
  }

  all<T = SqlRow>(sql: string, params: readonly SqlValue[] = []): T[] {
    const statement = this.#statement(sql);
    try {
      return statement.all(params) as T[];
    } catch (error) {
      throw this.#failed(error);
    }
  }

  values<T extends unknown[] = unknown[]>(sql: string, params: readonly SqlValue[] = []): T[] {
    const statement = this.#statement(sql);
    try {
      return statement.values(params) as T[];
    } catch (error) {
      throw this.#failed(error);
    }
  }

  transaction<T>(fn: () => T): T {
    const native = this.#open();
    if (this.#depth > 0) return this.#savepoint(fn);
    try {
      native.exec("BEGIN IMMEDIATE");
    } catch (error) {
      throw this.#failed(error);
    }
    this.#depth = 1;
    try {
      const result = fn();
      if (result instanceof Promise) {
        throw new TypeError(
          "Cannot run an async function in a transaction: SQLite transactions must not span an await",
        );
      }
      // fn caught an error after which SQLite had rolled everything back: nothing to commit.
      if (this.#aborted) throw this.#abortedError();
      native.exec("COMMIT");
      return result;
    } catch (error) {
      if (!this.#aborted) {
        try {
          native.exec("ROLLBACK");
        } catch {
          // The transaction may already be gone (SQLite rolls back on some errors by itself).
        }
      }
      // Report what made SQLite roll back, not what fn ran into after it.
      throw toFileError(this.path, this.#aborted ? this.#abortCause : error);
    } finally {
      this.#depth = 0;
      this.#aborted = false;
      this.#abortCause = undefined;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#statements.clear();
    this.#native.close();
    this.#afterClose?.();
  }

  #savepoint<T>(fn: () => T): T {
    const native = this.#open();
    const name = `apalis_${this.#depth}`;
    try {
      native.exec(`SAVEPOINT ${name}`);
    } catch (error) {
      throw this.#failed(error);
    }
    this.#depth++;
    try {
      const result = fn();
      if (this.#aborted) throw this.#abortedError();
      native.exec(`RELEASE ${name}`);
      return result;
    } catch (error) {
      // When SQLite rolled back the whole transaction, the savepoint is gone with it: the error
      // goes up to the outermost transaction, which must not commit.
      if (!this.#aborted && native.inTransaction) {
        native.exec(`ROLLBACK TO ${name}`);
        native.exec(`RELEASE ${name}`);
      } else if (!this.#aborted) {
        this.#aborted = true;
        this.#abortCause = error;
      }
      throw toFileError(this.path, error);
    } finally {
      this.#depth--;
    }
  }

  /**
   * The error to throw for a driver error: a `DatabaseFileError` naming the path for a file
   * problem. Notes when SQLite rolled back the open transaction by itself, so that no later
   * statement of it runs outside a transaction.
   */
  #failed(error: unknown): unknown {
    const translated = toSchemaMissing(this.path, toFileError(this.path, error));
    if (this.#depth > 0 && !this.#aborted && !this.#native.inTransaction) {
      this.#aborted = true;
      this.#abortCause = translated;
    }
    return translated;
  }

  #abortedError(): Error {
    return new Error(
      `Cannot go on with the transaction on database '${this.path}': SQLite rolled it back after an error`,
      { cause: this.#abortCause },
    );
  }

  #open(): NativeConnection {
    if (this.#closed) throw new Error(`Cannot use database '${this.path}': it is closed`);
    if (this.#aborted) throw this.#abortedError();
    return this.#native;
  }

  #statement(sql: string): NativeStatement {
    const native = this.#open();
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      if (this.#statements.size >= STATEMENT_CACHE_LIMIT) {
        const oldest = this.#statements.keys().next().value as string;
        this.#statements.get(oldest)?.finalize?.();
        this.#statements.delete(oldest);
      }
      try {
        statement = native.prepare(sql);
      } catch (error) {
        throw this.#failed(error);
      }
      this.#statements.set(sql, statement);
    }
    return statement;
  }
}
