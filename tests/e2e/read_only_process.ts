// deno-lint-ignore-file no-console
/**
 * Tries the library on a database it may not be allowed to write (a read-only file or
 * directory). `tests/sqlite/bad_files_test.ts` runs it without the power to ignore file modes (as
 * a normal user, or as root without CAP_DAC_OVERRIDE), which a test process running as root
 * cannot do to itself.
 *
 * Usage: `deno run -A tests/e2e/read_only_process.ts <db> [--read-only]`. Prints one JSON line
 * per step (`open`, `setup`, `stats`, `push`): `{ step, ok }` plus, on failure, the error's
 * `name`, `message`, `path` and `problem`, and whether its message shows a stack trace.
 *
 * @module
 */
import process from "node:process";
import { type Database, openDatabase, SqliteStorage } from "../../mod.ts";

const [path, flag] = process.argv.slice(2);

function report(step: string, error?: unknown): void {
  if (error === undefined) {
    console.log(JSON.stringify({ step, ok: true }));
    return;
  }
  const e = error as Error & { path?: string; problem?: string };
  console.log(JSON.stringify({
    step,
    ok: false,
    name: e.name,
    message: e.message,
    path: e.path,
    problem: e.problem,
  }));
}

async function attempt(step: string, fn: () => unknown): Promise<boolean> {
  try {
    await fn();
    report(step);
    return true;
  } catch (error) {
    report(step, error);
    return false;
  }
}

let db: Database | undefined;
if (await attempt("open", () => db = openDatabase(path!, { readOnly: flag === "--read-only" }))) {
  const storage = new SqliteStorage<string>(db!, "q");
  await attempt("setup", () => SqliteStorage.setup(db!));
  await attempt("stats", () => storage.stats());
  await attempt("push", () => storage.push("x"));
  db!.close();
}
