import type { Admin, Config, Storage } from "../../mod.ts";
import { isPostgresUrl, redactUrl } from "../format/postgres_url.ts";
import { UsageError } from "./errors.ts";
import type { CliIo } from "./io.ts";
import { openPostgresForCommand } from "./postgres_database.ts";
import { openSqliteForCommand } from "./sqlite_database.ts";

/** Options every command understands, wherever they stand on the command line. */
export interface GlobalOptions {
  /**
   * The database: a SQLite file's path, or a `postgres://` (`postgresql://`) URL. `--db`, else
   * `$APALIS_DB`, else `./apalis.db`.
   */
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
 *   file, whatever the file is; on PostgreSQL, the session is read-only.
 * - `"read-then-write"`: read-only until a statement needs to write, then through a writable
 *   connection opened at that moment (`board`, whose pages read and whose buttons write). On
 *   PostgreSQL, a session that writes, used by the buttons only.
 * - `"write"`: writable, once a read-only look found an apalis database (`retry`, `kill`,
 *   `vacuum`, `work`).
 * - `"create"`: like `"write"`, but a missing file is created and set up, and an older schema is
 *   upgraded (`push`). On PostgreSQL (where the database exists already) the tables are set up
 *   when missing.
 * - `"setup"`: creates a missing file, or sets up any SQLite file, e.g. an application's own
 *   database that the queue will share (`init`); on PostgreSQL, sets up the tables.
 */
export type DatabaseAccess = "read" | "read-then-write" | "write" | "create" | "setup";

/** A command's database, whatever its engine. */
export interface CommandDatabase {
  /** Which engine it is on. */
  readonly engine: "sqlite" | "postgres";
  /** Where it is, for messages: a file path, or a URL without its password. */
  readonly location: string;
  /** Its reads and repairs across queues. */
  readonly admin: Admin;
  /** A storage of `queue` (a name, or a `Config`) on it (push, work). */
  storage<T = unknown>(queue: string | Config): Storage<T>;
  /** Its schema version. */
  schemaVersion(): Promise<number>;
  /** Closes it. */
  close(): Promise<void>;
}

/**
 * Opens the command's database for `access`: the SQLite file at `--db`, or the PostgreSQL
 * database when `--db` is a `postgres://` or `postgresql://` URL (the PostgreSQL client is loaded
 * only then). A database without apalis tables is refused (exit 2) unless the command sets one
 * up, before anything writes to it; so is a missing SQLite file unless the command creates one.
 * A database from a newer version of the library is refused. A `--db` that looks like another
 * kind of URL (`mysql://…`) is refused as bad input.
 */
export async function openForCommand(
  globals: GlobalOptions,
  access: DatabaseAccess,
): Promise<CommandDatabase> {
  if (isPostgresUrl(globals.db)) return await openPostgresForCommand(globals.db, access);
  assertNotOtherUrl(globals.db);
  return openSqliteForCommand(globals.db, access);
}

/**
 * Refuses `scheme://…` for any other scheme than PostgreSQL's, which would otherwise be taken
 * as a file path. (`file:` URIs stay SQLite's; one-letter schemes are drive letters.)
 */
export function assertNotOtherUrl(db: string): void {
  const scheme = /^([a-z][a-z0-9+.-]+):\/\//i.exec(db)?.[1];
  if (scheme === undefined || scheme.toLowerCase() === "file") return;
  const reason = /^postgres(ql)?$/i.test(scheme)
    ? `write the scheme in lower case (${scheme.toLowerCase()}://)`
    : `${scheme}:// URLs are not supported (give a SQLite file path, or a postgres:// or postgresql:// URL)`;
  throw new UsageError(`Cannot use database '${redactUrl(db)}': ${reason}`);
}
