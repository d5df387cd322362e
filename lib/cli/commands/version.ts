import process from "node:process";
import { openDatabase } from "../../sqlite/mod.ts";
import type { Command } from "../command.ts";
import { expectPositionals, json, parseOptions } from "../format.ts";
import { VERSION } from "../version.ts";

/** `apalis version`: the CLI's, the runtime's and SQLite's versions. */
export const versionCommand: Command = {
  name: "version",
  summary: "print the versions of apalis, its runtime and SQLite",
  help: `Usage: apalis version

Prints the version of apalis, of the runtime it runs on (Deno or Bun) and of SQLite. Needs no
database.

Options:
  --json   print {"version", "runtime": {"name", "version"}, "sqlite"}

Example:
  apalis version
`,
  async run({ io, args, globals }) {
    const { positionals } = parseOptions("version", args, {});
    expectPositionals("version", positionals, []);
    const info = { version: VERSION, runtime: runtime(), sqlite: sqliteVersion() };
    io.stdout(
      globals.json
        ? json(info)
        : `apalis ${VERSION} (${info.runtime.name} ${info.runtime.version}, sqlite ${info.sqlite})\n`,
    );
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
