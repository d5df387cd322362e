/**
 * A worker on a database whose schema predates retention (the library was upgraded, `setup()`
 * not run since) still runs its tasks, and says once, not at every pass, that it cannot apply
 * its queue's retention.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Config, SqliteStorage, WorkerBuilder, type WorkerEvent } from "../../mod.ts";
import { migrate } from "../../lib/store/schema.ts";
import { tempDatabase, waitUntil } from "../_helpers.ts";

Deno.test("a worker on a schema without retention runs tasks and reports the missing table once", async () => {
  await using temp = await tempDatabase({ setup: false });
  migrate(temp.db, 8); // the version before retention (SQLite migration 9)
  const storage = new SqliteStorage<number>(
    temp.db,
    new Config("old").setRetention({ every: 50 }),
  );
  const errors: WorkerEvent[] = [];
  const worker = new WorkerBuilder("old-schema")
    .backend(storage)
    .handleSignals(false)
    .onEvent((_ctx, event) => {
      if (event.type === "error") errors.push(event);
    })
    .build((n) => n * 2);
  const running = worker.run();
  try {
    const id = await storage.push(21);
    const [task] = await storage.waitFor([id], { timeoutMs: 10_000 });
    assert.equal(task?.lastResult, 42);
    await waitUntil(() => errors.length > 0, "the report of the missing leases table");
    // A pass every 50 ms: 1 s brings 20 more, and no second report.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.equal(
      errors.length,
      1,
      errors.map((e) => String((e as { error: unknown }).error)).join(),
    );
    const error = (errors[0] as { error: Error }).error;
    assert.match(`${error.message} ${String(error.cause)}`, /apalis_leases/);
  } finally {
    await worker.stop();
    await running;
  }
});
