// deno-lint-ignore-file no-console
/**
 * Holds the write lock of a database for a while, as another application writing to the same
 * file would: `BEGIN IMMEDIATE`, push a task, sleep, `COMMIT`.
 *
 * Usage: `deno run -A tests/e2e/hold_lock_process.ts <db> <queue> <holdMs>`. Prints
 * `locked <taskId>` once it holds the lock, and `committed <epoch ms>` (the time just before its
 * COMMIT) when done.
 *
 * @module
 */
import process from "node:process";
import { openDatabase, SqliteStorage } from "../../mod.ts";

const [path, queue, holdMs] = process.argv.slice(2);
const db = openDatabase(path!);
const storage = new SqliteStorage<{ from: string }>(db, queue!);
db.exec("BEGIN IMMEDIATE");
const id = storage.pushSync({ from: "lock holder" });
console.log(`locked ${id}`);
await new Promise((resolve) => setTimeout(resolve, Number(holdMs)));
const committedAt = Date.now();
db.exec("COMMIT");
console.log(`committed ${committedAt}`);
db.close();
