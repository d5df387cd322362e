/**
 * A worker on a database whose schema predates schedules (the library was upgraded, `setup()` not
 * run since) still runs its tasks, and says once, not every second, that it cannot read schedules.
 *
 * @module
 */
import assert from "node:assert/strict";
import { SqliteStorage, WorkerBuilder, type WorkerEvent } from "../../mod.ts";
import { migrate } from "../../lib/store/schema.ts";
import { tempDatabase, waitUntil } from "../_helpers.ts";

Deno.test("a worker on a schema without schedules runs tasks and reports the missing table once", async () => {
  await using temp = await tempDatabase({ setup: false });
  migrate(temp.db, 7); // the version before schedules (SQLite migration 8)
  const storage = new SqliteStorage<number>(temp.db, "old");
  const errors: WorkerEvent[] = [];
  const worker = new WorkerBuilder("old-schema")
    .backend(storage)
    .handleSignals(false)
    .onEvent((_ctx, event) => {
      // (Retention, younger than schedules, reports its own missing table: not this test's.)
      if (
        event.type === "error" &&
        !/apalis_leases/.test(`${(event.error as Error).message} ${(event.error as Error).cause}`)
      ) {
        errors.push(event);
      }
    })
    .build((n) => n * 2);
  const running = worker.run();
  try {
    const id = await storage.push(21);
    const [task] = await storage.waitFor([id], { timeoutMs: 10_000 });
    assert.equal(task?.lastResult, 42);
    await waitUntil(() => errors.length > 0, "the report of the missing schedules table");
    // Looks that would come every second come every minute here: 2.5 s bring no second report.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    assert.equal(
      errors.length,
      1,
      errors.map((e) => String((e as { error: unknown }).error)).join(),
    );
    assert.match(String((errors[0] as { error: Error }).error.cause), /apalis_schedules/);
  } finally {
    await worker.stop();
    await running;
  }
});
