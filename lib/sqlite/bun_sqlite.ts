import type { NativeConnection, NativeStatement } from "./_connection.ts";
import type { SqlRow, SqlValue } from "./types.ts";

interface BunStatement {
  run(...params: SqlValue[]): { changes: number };
  get(...params: SqlValue[]): unknown;
  all(...params: SqlValue[]): unknown[];
  values(...params: SqlValue[]): unknown[][];
  finalize(): void;
}

interface BunDatabase {
  exec(sql: string): void;
  prepare(sql: string): BunStatement;
  readonly inTransaction: boolean;
  close(): void;
}

type BunDatabaseClass = new (
  path: string,
  options?: { readonly?: boolean; create?: boolean },
) => BunDatabase;

/** Loads `bun:sqlite`, the fallback for a Bun that has no `node:sqlite`. */
export async function loadBunSqlite(): Promise<
  (path: string, readOnly: boolean) => NativeConnection
> {
  // A computed specifier keeps `deno check` and bundlers from resolving a Bun-only module.
  const specifier = ["bun", "sqlite"].join(":");
  const { Database } = await import(specifier) as { Database: BunDatabaseClass };
  return (path, readOnly) => openWith(Database, path, readOnly);
}

function openWith(Database: BunDatabaseClass, path: string, readOnly: boolean): NativeConnection {
  const db = new Database(path, readOnly ? { readonly: true } : { create: true });
  // bun:sqlite closes a connection only once its statements are finalized (until then it lingers,
  // holding its locks, and the -wal and -shm files stay): close() finalizes what is left.
  const live = new Set<BunStatement>();
  return {
    exec: (sql) => db.exec(sql),
    prepare(sql): NativeStatement {
      const statement = db.prepare(sql);
      live.add(statement);
      return {
        run: (params) => ({ changes: statement.run(...params).changes }),
        get: (params) => (statement.get(...params) ?? undefined) as SqlRow | undefined,
        all: (params) => statement.all(...params) as SqlRow[],
        values: (params) => statement.values(...params),
        finalize() {
          if (live.delete(statement)) statement.finalize();
        },
      };
    },
    get inTransaction() {
      return db.inTransaction;
    },
    close() {
      for (const statement of live) statement.finalize();
      live.clear();
      db.close();
    },
  };
}
