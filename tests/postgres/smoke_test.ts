import assert from "node:assert/strict";
import { WorkerBuilder } from "../../mod.ts";
import { PostgresStorage } from "../../postgres.ts";
import { pgTest, tempPostgres } from "../_postgres.ts";

pgTest("smoke: push, work, done", async () => {
  await using db = await tempPostgres();
  const storage = new PostgresStorage<number>(db.pg, "smoke");
  const ids = await storage.pushAll([1, 2, 3].map((n) => ({ args: n, options: {} }) as never));
  const worker = new WorkerBuilder("w").backend(storage).handleSignals(false).onEvent((_c, e) => {
    if (e.type === "error") console.log(e.error);
  }).build((n) => n * 2);
  const running = worker.run();
  const done = await storage.waitFor(ids, { timeoutMs: 10_000 });
  await worker.stop();
  await running;
  assert.deepEqual(done.map((t) => t.lastResult), [2, 4, 6]);
});
