import type { NativeConnection, NativeStatement } from "./_connection.ts";
import type { SqlRow, SqlValue } from "./types.ts";

interface NodeStatement {
  run(...params: SqlValue[]): { changes: number | bigint };
  get(...params: SqlValue[]): unknown;
  all(...params: SqlValue[]): unknown[];
  /** Rows as arrays from then on; missing before Node 22.16 / 24. */
  setReturnArrays?(enabled: boolean): void;
}

interface NodeDatabase {
  exec(sql: string): void;
  prepare(sql: string): NodeStatement;
  /** Missing before Node 22.16: then the adapter cannot tell, and assumes it is open. */
  readonly isTransaction?: boolean;
  close(): void;
}

type NodeDatabaseClass = new (path: string, options?: { readOnly?: boolean }) => NodeDatabase;

/** Loads `node:sqlite` (Deno, Node >= 22.5, recent Bun); rejects where it does not exist. */
export async function loadNodeSqlite(): Promise<
  (path: string, readOnly: boolean) => NativeConnection
> {
  const specifier = "node:sqlite";
  const { DatabaseSync } = await import(specifier) as { DatabaseSync: NodeDatabaseClass };
  if (typeof DatabaseSync !== "function") throw new Error("node:sqlite has no DatabaseSync");
  return (path, readOnly) => openWith(DatabaseSync, path, readOnly);
}

function openWith(
  DatabaseSync: NodeDatabaseClass,
  path: string,
  readOnly: boolean,
): NativeConnection {
  const db = new DatabaseSync(path, { readOnly });
  return {
    exec: (sql) => db.exec(sql),
    prepare(sql): NativeStatement {
      const statement = db.prepare(sql);
      // Rows as arrays need a statement of their own (the mode sticks to a statement); null
      // where the driver cannot return arrays.
      let arrays: NodeStatement | null | undefined;
      return {
        run: (params) => ({ changes: Number(statement.run(...params).changes) }),
        get: (params) => statement.get(...params) as SqlRow | undefined,
        all: (params) => statement.all(...params) as SqlRow[],
        values(params) {
          if (arrays === undefined) arrays = arrayStatement(db, sql);
          if (arrays === null) {
            return (statement.all(...params) as SqlRow[]).map((row) => Object.values(row));
          }
          return arrays.all(...params) as unknown[][];
        },
      };
    },
    get inTransaction() {
      return db.isTransaction ?? true;
    },
    close: () => db.close(),
  };
}

function arrayStatement(db: NodeDatabase, sql: string): NodeStatement | null {
  const statement = db.prepare(sql);
  if (typeof statement.setReturnArrays !== "function") return null;
  statement.setReturnArrays(true);
  return statement;
}
