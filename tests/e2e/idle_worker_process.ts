// deno-lint-ignore-file no-console
/**
 * An idle worker for the idle-cost test: default config, an empty queue. Prints "ready" once it
 * is waiting, then sits until SIGTERM.
 */
import process from "node:process";
import { openDatabase, SqliteStorage, WorkerBuilder } from "../../mod.ts";

const db = openDatabase(process.argv[2]!);
SqliteStorage.setup(db);
const storage = new SqliteStorage<unknown>(db, "idle");
const worker = new WorkerBuilder("idle-worker").backend(storage)
  .onEvent((_ctx, event) => {
    if (event.type === "idle") console.log("ready");
  })
  .build(() => {});
await worker.run();
db.close();
