// deno-lint-ignore-file no-console
/**
 * A worker process whose handler throws an error that cannot be serialised (`name` is a
 * BigInt). Runs under `deno run -A` and `bun run` alike (only `node:` APIs and the library).
 *
 * Usage: unreadable_error_process.ts DB_PATH
 *
 * Pushes one task, runs a worker until the task has finished, then exits 0 after printing the
 * task's status. A crash of the worker (an unhandled rejection) exits non-zero instead.
 *
 * @module
 */
import process from "node:process";
import { openDatabase, SqliteStorage, WorkerBuilder } from "../../mod.ts";

const path = process.argv[2];
if (!path) throw new Error("usage: unreadable_error_process.ts DB_PATH");
const db = openDatabase(path);
SqliteStorage.setup(db);
const storage = new SqliteStorage<string>(db, "unreadable");
const id = await storage.push("x", { maxAttempts: 1 });
const worker = new WorkerBuilder("unreadable-worker")
  .backend(storage)
  .handleSignals(false)
  .build(() => {
    throw Object.assign(new Error("name is a BigInt"), { name: 10n });
  });
const running = worker.run();
const [task] = await storage.waitFor(id, { timeoutMs: 10_000 });
await worker.stop();
await running;
db.close();
console.log(JSON.stringify({ status: task!.status, error: task!.lastError?.name }));
