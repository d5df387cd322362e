import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase } from "../sqlite/open.ts";
import type { Database, OpenDatabaseOptions } from "../sqlite/types.ts";
import type { Config } from "../storage/config.ts";
import { SqliteStorage, type SqliteStorageOptions } from "../storage/sqlite_storage.ts";

/** A set-up SQLite file in a directory of its own, from {@linkcode tempDatabase}. */
export interface TempDatabase extends AsyncDisposable {
  /** The open connection. */
  readonly db: Database;
  /** The file's path. */
  readonly path: string;
  /** The directory holding it (removed on dispose). */
  readonly dir: string;
  /** A storage for `queue` on this database (options: codec, clock). */
  storage<T = unknown>(queue?: string | Config, options?: SqliteStorageOptions): SqliteStorage<T>;
  /**
   * Closes the connection and removes the directory: what `await using` calls (on runtimes
   * without that syntax, such as Node 22, call it in a `finally`).
   */
  close(): Promise<void>;
  /** {@linkcode TempDatabase.close}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Opens a new SQLite database in a temporary directory, with the queue's tables set up: one per
 * test, so tests never share state and may run in parallel. `await using` closes and removes it.
 * A real file, not `:memory:`: several connections and worker processes can open `path`, as in
 * production.
 *
 * @example Usage
 * ```ts
 * import { tempDatabase } from "@apalis/sqlite/testing";
 *
 * await using db = await tempDatabase();
 * const emails = db.storage<{ to: string }>("email");
 * await emails.push({ to: "a@b.c" });
 * ```
 */
export async function tempDatabase(options: OpenDatabaseOptions = {}): Promise<TempDatabase> {
  const dir = await mkdtemp(join(tmpdir(), "apalis_test_"));
  const path = join(dir, "queue.db");
  let db: Database;
  try {
    db = openDatabase(path, options);
    SqliteStorage.setup(db);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const close = async () => {
    if (!db.closed) db.close();
    await rm(dir, { recursive: true, force: true });
  };
  return {
    db,
    path,
    dir,
    storage: <T>(queue: string | Config = "default", storageOptions: SqliteStorageOptions = {}) =>
      new SqliteStorage<T>(db, queue, storageOptions),
    close,
    [Symbol.asyncDispose]: close,
  };
}
