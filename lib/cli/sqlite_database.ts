import {
  type Config,
  type Database,
  openDatabase,
  SCHEMA_VERSION,
  SchemaVersionError,
  SqliteStorage,
} from "../../mod.ts";
import { existsSync } from "node:fs";
import type { CommandDatabase, DatabaseAccess } from "./command.ts";
import { UsageError } from "./errors.ts";
import { WritableOnDemand } from "./writable_on_demand.ts";

/**
 * Opens the SQLite file at `path` for `access` (see {@linkcode DatabaseAccess}). A missing file
 * is a usage error (exit 2) unless the command creates one, and so is a file without apalis
 * tables unless the command is `init`: both are refused before anything opens the file for
 * writing, so that such a file is left exactly as it was. A file from a newer version of the
 * library is refused.
 */
export function openSqliteForCommand(path: string, access: DatabaseAccess): CommandDatabase {
  const exists = existsSync(path);
  if (!exists && access !== "create" && access !== "setup") {
    throw new UsageError(
      `Cannot open database '${path}': no such file (create it with 'apalis init', or pass --db)`,
    );
  }
  if (access === "setup" || !exists) return sqliteDatabase(openAndSetUp(path));
  const reader = openDatabase(path, { readOnly: true });
  try {
    assertApalisSchema(reader);
  } catch (error) {
    reader.close();
    throw error;
  }
  if (access === "read") return sqliteDatabase(reader);
  if (access === "read-then-write") {
    return sqliteDatabase(new WritableOnDemand(reader, () => openDatabase(path)));
  }
  reader.close();
  if (access === "create") return sqliteDatabase(openAndSetUp(path));
  const db = openDatabase(path);
  try {
    assertApalisSchema(db);
  } catch (error) {
    db.close();
    throw error;
  }
  return sqliteDatabase(db);
}

function sqliteDatabase(db: Database): CommandDatabase {
  return {
    engine: "sqlite",
    location: db.path,
    admin: SqliteStorage.admin(db),
    storage: <T>(queue: string | Config) => new SqliteStorage<T>(db, queue),
    schemaVersion: () => Promise.resolve(SqliteStorage.schemaVersion(db)),
    close: () => {
      db.close();
      return Promise.resolve();
    },
  };
}

function openAndSetUp(path: string): Database {
  const db = openDatabase(path);
  try {
    SqliteStorage.setup(db);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/** Refuses a database without apalis tables (exit 2) or from a newer version of the library. */
function assertApalisSchema(db: Database): void {
  const version = SqliteStorage.schemaVersion(db);
  if (version === 0) {
    throw new UsageError(
      `Cannot use database '${db.path}': it has no apalis tables (run 'apalis init' first)`,
    );
  }
  if (version > SCHEMA_VERSION) throw new SchemaVersionError(db.path, version, SCHEMA_VERSION);
}
