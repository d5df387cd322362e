// deno-lint-ignore-file no-console
/**
 * One of several processes that open the same database file, which does not exist yet, at the
 * same moment: `tests/e2e/fresh_open_test.ts` starts them together, under Deno and Bun.
 *
 * Usage: `<runtime> tests/e2e/fresh_open_process.ts <db> <barrier> <name>`. Once loaded, creates
 * the file `<barrier>.<name>` (it is ready) and waits until the file `<barrier>` exists (so that
 * every process starts its open at the same moment), then opens `<db>`, sets it up and pushes one
 * task whose payload is `<name>` to queue `fresh`. Prints `ok` and exits 0, or prints the error
 * on stderr and exits 1.
 *
 * @module
 */
import { existsSync, writeFileSync } from "node:fs";
import process from "node:process";
import { openDatabase, SqliteStorage } from "../../mod.ts";

const [path, barrier, name] = process.argv.slice(2);
if (!path || !barrier || !name) {
  console.error("usage: fresh_open_process.ts <db> <barrier> <name>");
  process.exit(2);
}

writeFileSync(`${barrier}.${name}`, "");
// Poll every millisecond, sleeping in between (a spin would starve the processes still loading):
// the processes leave the barrier within about a millisecond of each other.
const nap = new Int32Array(new SharedArrayBuffer(4));
while (!existsSync(barrier)) Atomics.wait(nap, 0, 0, 1);
try {
  const db = openDatabase(path);
  await SqliteStorage.setup(db);
  await new SqliteStorage<string>(db, "fresh").push(name);
  db.close();
  console.log("ok");
} catch (error) {
  console.error(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
  process.exit(1);
}
