import { existsSync } from "node:fs";
import { type Database, openDatabase } from "../sqlite/mod.ts";
import { SCHEMA_VERSION, SchemaVersionError } from "../store/schema.ts";
import type { Admin } from "../storage/admin.ts";
import { SqliteStorage } from "../storage/sqlite_storage.ts";
import type { Storage } from "../storage/storage.ts";
import { UsageError } from "./errors.ts";
import { WritableOnDemand } from "./writable_on_demand.ts";
import type { CliIo } from "./io.ts";

/** Options every command understands, wherever they stand on the command line. */
export interface GlobalOptions {
  /** The database file: `--db`, else `$APALIS_DB`, else `./apalis.db`. */
  db: string;
  /** Print data as JSON instead of tables. */
  json: boolean;
}

/** What a command receives. */
export interface CommandContext {
  io: CliIo;
  /** The arguments after the command name, global options removed. */
  args: string[];
  globals: GlobalOptions;
}

/** One CLI command: one file under `lib/cli/commands/`. */
export interface Command {
  /** The word that selects it. */
  name: string;
  /** One line for the program's help. */
  summary: string;
  /** Its full help text (usage line, options, examples). */
  help: string;
  /** Runs it; returns the exit code. Throws `UsageError` for bad usage or input (exit 2). */
  run(ctx: CommandContext): Promise<number>;
}

/**
 * How a command uses its database:
 * - `"read"`: read-only (`ls`, `show`, `stats`, `queues`, `workers`): nothing is written to any
 *   file, whatever the file is.
 * - `"read-then-write"`: read-only until a statement needs to write, then through a writable
 *   connection opened at that moment (`board`, whose pages read and whose buttons write).
 * - `"write"`: writable, once a read-only look found an apalis database (`retry`, `kill`,
 *   `vacuum`, `work`).
 * - `"create"`: like `"write"`, but a missing file is created and set up, and an older schema is
 *   upgraded (`push`).
 * - `"setup"`: creates a missing file, or sets up any SQLite file, e.g. an application's own
 *   database that the queue will share (`init`).
 */
export type DatabaseAccess = "read" | "read-then-write" | "write" | "create" | "setup";

/** A command's database, whatever its engine. */
export interface CommandDatabase {
  /** Where it is, for messages: a file path, or a URL without its password. */
  readonly location: string;
  /** Its reads and repairs across queues. */
  readonly admin: Admin;
  /** A storage of `queue` on it (push, work). */
  storage<T = unknown>(queue: string): Storage<T>;
  /** Its schema version. */
  schemaVersion(): Promise<number>;
  /** Closes it. */
  close(): Promise<void>;
}

/**
 * Opens the command's database for `access`. A missing file is a usage error (exit 2) unless
 * the command creates one, and so is a file without apalis tables unless the command is `init`:
 * both are refused before anything opens the file for writing, so that such a file is left
 * exactly as it was. A file from a newer version of the library is refused.
 */
export function openForCommand(globals: GlobalOptions, access: DatabaseAccess): CommandDatabase {
  const path = globals.db;
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
    location: db.path,
    admin: SqliteStorage.admin(db),
    storage: <T>(queue: string) => new SqliteStorage<T>(db, queue),
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
