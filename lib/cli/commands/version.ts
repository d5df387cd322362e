import { openDatabase } from "../../../mod.ts";
import process from "node:process";
import { isPostgresUrl } from "../../format/postgres_url.ts";
import type { Command } from "../command.ts";
import { postgresServerVersion } from "../postgres_database.ts";
import { expectPositionals, json, parseOptions } from "../format.ts";
import { VERSION } from "../version.ts";

/** `apalis version`: the CLI's, the runtime's and SQLite's versions (and PostgreSQL's). */
export const versionCommand: Command = {
  name: "version",
  summary: "print the versions of apalis, its runtime and SQLite (and PostgreSQL)",
  help: `Usage: apalis version

Prints the version of apalis, of the runtime it runs on (Deno or Bun) and of SQLite. Needs no
database. When --db (or $APALIS_DB) is a postgres:// URL, it also asks that server for its
version; a server it cannot reach is reported on stderr after the rest, with exit 1.

Options:
  --json   print {"version", "runtime": {"name", "version"}, "sqlite"} (and "postgresql")

Examples:
  apalis version
  apalis --db postgres://app@db.internal:5432/app version
`,
  async run({ io, args, globals }) {
    const { positionals } = parseOptions("version", args, {});
    expectPositionals("version", positionals, []);
    const info: {
      version: string;
      runtime: { name: string; version: string };
      sqlite: string;
      postgresql?: string;
    } = { version: VERSION, runtime: runtime(), sqlite: sqliteVersion() };
    let problem: unknown;
    if (isPostgresUrl(globals.db)) {
      try {
        info.postgresql = await postgresServerVersion(globals.db);
      } catch (error) {
        problem = error;
      }
    }
    io.stdout(
      globals.json
        ? json(info)
        : `apalis ${VERSION} (${info.runtime.name} ${info.runtime.version}, sqlite ${info.sqlite}${
          info.postgresql === undefined ? "" : `, postgresql ${info.postgresql}`
        })\n`,
    );
    if (problem !== undefined) throw problem;
    return 0;
  },
};

function runtime(): { name: string; version: string } {
  const deno = (globalThis as { Deno?: { version: { deno: string } } }).Deno?.version.deno;
  if (process.versions.bun) return { name: "bun", version: process.versions.bun };
  if (deno) return { name: "deno", version: deno };
  return { name: "node", version: process.versions.node };
}

function sqliteVersion(): string {
  const db = openDatabase(":memory:");
  try {
    return db.get<{ version: string }>("SELECT sqlite_version() AS version")!.version;
  } finally {
    db.close();
  }
}
