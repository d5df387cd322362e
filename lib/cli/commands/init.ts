import { resolve } from "node:path";
import { type Command, openForCommand } from "../command.ts";
import { expectPositionals, json, parseOptions } from "../format.ts";

/** `apalis init`: creates the database, or migrates it to this version's schema. */
export const initCommand: Command = {
  name: "init",
  summary: "create or migrate the database",
  help: `Usage: apalis init

Creates the database file (--db, else $APALIS_DB, else ./apalis.db) with the apalis tables, or
upgrades an existing one to this version's schema. Safe to run again. Given another
application's SQLite file, it adds the apalis tables beside that application's own (and
switches the file to WAL). Prints the file's path and its schema version.

Given a postgres:// URL, it creates the apalis tables (all named apalis_*) in that database,
which must exist (createdb), or upgrades them; safe when several processes run it at once.
It prints the URL without its password.

Options:
  --json   print {"path", "schemaVersion"} ("path": the file, or the URL)

Examples:
  apalis --db /var/lib/jobs.db init
  apalis --db postgres://app@db.internal:5432/app init
`,
  async run({ io, args, globals }) {
    const { positionals } = parseOptions("init", args, {});
    expectPositionals("init", positionals, []);
    const database = await openForCommand(globals, "setup");
    try {
      const path = database.engine === "sqlite" ? resolve(globals.db) : database.location;
      const version = await database.schemaVersion();
      io.stdout(
        globals.json
          ? json({ path, schemaVersion: version })
          : `Initialized ${path} (schema version ${version})\n`,
      );
      return 0;
    } finally {
      await database.close();
    }
  },
};
