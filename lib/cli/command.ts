import { existsSync } from "node:fs";
import { type Database, openDatabase } from "../sqlite/mod.ts";
import { SCHEMA_VERSION, schemaVersion, SchemaVersionError } from "../store/schema.ts";
import { SqliteStorage } from "../storage/sqlite_storage.ts";
import { UsageError } from "./errors.ts";
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
 * Opens the command's database. With `create`, a missing file is created and set up (`init`,
 * `push`); otherwise a missing or never set-up file is a usage error (exit 2), and a file from a
 * newer version of the library is refused.
 */
export function openForCommand(
  globals: GlobalOptions,
  options: { create?: boolean } = {},
): { db: Database; storage: SqliteStorage } {
  const path = globals.db;
  if (!options.create && !existsSync(path)) {
    throw new UsageError(
      `Cannot open database '${path}': no such file (create it with 'apalis init', or pass --db)`,
    );
  }
  const db = openDatabase(path);
  try {
    if (options.create) {
      SqliteStorage.setup(db);
    } else {
      const version = schemaVersion(db);
      if (version === 0) {
        throw new UsageError(
          `Cannot use database '${path}': it has no apalis tables (run 'apalis init' first)`,
        );
      }
      if (version > SCHEMA_VERSION) throw new SchemaVersionError(path, version, SCHEMA_VERSION);
    }
  } catch (error) {
    db.close();
    throw error;
  }
  return { db, storage: new SqliteStorage(db) };
}
