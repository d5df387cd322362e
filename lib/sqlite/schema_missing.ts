/**
 * Thrown when the queue's tables are missing from a database: it was never set up.
 *
 * @example Usage
 * ```ts
 * import { openDatabase, SchemaMissingError, SqliteStorage } from "@apalis/sqlite";
 *
 * const db = openDatabase(":memory:");
 * try {
 *   await new SqliteStorage<number>(db, "q").stats();
 * } catch (error) {
 *   if (!(error instanceof SchemaMissingError)) throw error;
 *   SqliteStorage.setup(db); // what the message says to do
 * }
 * db.close();
 * ```
 */
export class SchemaMissingError extends Error {
  /** The database file. */
  readonly path: string;

  /**
   * @param path the database file
   * @param options the driver's error, as `cause`
   */
  constructor(path: string, options?: ErrorOptions) {
    super(
      `Cannot use database '${path}': it has no apalis-sqlite tables (it was never set up); call SqliteStorage.setup(db) or run 'apalis init' first`,
      options,
    );
    this.name = "SchemaMissingError";
    this.path = path;
  }
}

/** `error` as a {@linkcode SchemaMissingError} when SQLite could not find one of our tables. */
export function toSchemaMissing(path: string, error: unknown): unknown {
  if (error instanceof Error && /^no such table: apalis_/.test(error.message)) {
    return new SchemaMissingError(path, { cause: error });
  }
  return error;
}
