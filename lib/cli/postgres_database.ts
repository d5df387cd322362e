import { type Config, SchemaVersionError } from "../../mod.ts";
import { postgresUrlProblem, redactUrl } from "../format/postgres_url.ts";
import type { CommandDatabase, DatabaseAccess } from "./command.ts";
import { UsageError } from "./errors.ts";

type PostgresModule = typeof import("../../postgres.ts");
type PostgresConnection = InstanceType<PostgresModule["PostgresConnection"]>;

/**
 * Loads the PostgreSQL client: the public entry point, imported only when a command is given a
 * postgres:// URL, so that SQLite commands never load it. The specifier is a literal, so that
 * `bun build --compile` and `deno compile` put the client in the binary.
 */
function loadPostgres(): Promise<PostgresModule> {
  return import("../../postgres.ts");
}

/**
 * Connects to the PostgreSQL database at `url` for `access` (see {@linkcode DatabaseAccess}):
 * - `"read"`: a read-only session (every statement that would write fails), after checking the
 *   schema version without setting anything up;
 * - `"read-then-write"` and `"write"`: a session that writes, after the same check;
 * - `"create"` and `"setup"`: sets up the tables (idempotent; creates them when missing and
 *   upgrades an older schema). The database itself exists already: PostgreSQL creates databases
 *   with `CREATE DATABASE` (or `createdb`), not by connecting.
 *
 * A URL that is not one (a bad port, a host with spaces) is a usage error (exit 2). A database
 * without apalis tables is one too, except for `create` and `setup`, and a database from a newer
 * version of the library is refused. A server that cannot be reached, refuses the login or has
 * no such database fails with one line naming the server without the password (exit 1).
 */
export async function openPostgresForCommand(
  url: string,
  access: DatabaseAccess,
): Promise<CommandDatabase> {
  const pg = await connect(url, access === "read");
  const { PostgresStorage, POSTGRES_SCHEMA_VERSION } = await loadPostgres();
  try {
    if (access === "create" || access === "setup") await PostgresStorage.setup(pg);
    else {
      const version = await PostgresStorage.schemaVersion(pg);
      if (version === 0) {
        throw new UsageError(
          `Cannot use database '${pg.location}': it has no apalis tables (run 'apalis init' first)`,
        );
      }
      if (version > POSTGRES_SCHEMA_VERSION) {
        throw new SchemaVersionError(pg.location, version, POSTGRES_SCHEMA_VERSION);
      }
    }
  } catch (error) {
    await pg.close();
    throw error;
  }
  const admin = PostgresStorage.admin(pg);
  return {
    engine: "postgres",
    location: pg.location,
    admin,
    storage: <T>(queue: string | Config) => new PostgresStorage<T>(pg, queue),
    schemaVersion: () => PostgresStorage.schemaVersion(pg),
    close: () => admin.backend.close(),
  };
}

/** The version of the PostgreSQL server at `url` (`SHOW server_version`), read-only. */
export async function postgresServerVersion(url: string): Promise<string> {
  const pg = await connect(url, true);
  try {
    const [row] = await pg.sql<{ server_version: string }[]>`SHOW server_version`;
    return row!.server_version.split(" ")[0]!;
  } finally {
    await pg.close();
  }
}

async function connect(url: string, readOnly: boolean): Promise<PostgresConnection> {
  const problem = postgresUrlProblem(url);
  if (problem !== undefined) {
    throw new UsageError(`Cannot use database '${redactUrl(url)}': ${problem}`);
  }
  const { connectPostgres } = await loadPostgres();
  return await connectPostgres(url, { readOnly });
}
