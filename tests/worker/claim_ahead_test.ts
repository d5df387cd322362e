import assert from "node:assert/strict";
import { Config, type Database, SqliteStorage, Task, WorkerBuilder } from "../../mod.ts";
import { tempDatabase, waitUntil, workerBlockedAt } from "../_helpers.ts";

function held(db: Database): { id: string; attempts: number; max_attempts: number }[] {
  return db.all(
    "SELECT id, attempts, max_attempts FROM apalis_tasks WHERE status = 'running' ORDER BY id",
  );
}

Deno.test("Worker claims quick tasks ahead of its free slots, but never a task's last attempt", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, new Config("ahead").setBufferSize(20));
  const BLOCK = 3000;
  // After the quick ones: tasks on their last attempt (maxAttempts 1) and others, alternating.
  const ids = await storage.pushAll(
    Array.from(
      { length: BLOCK + 60 },
      (_, i) => Task.builder(i).maxAttempts(i > BLOCK && i % 2 === 1 ? 1 : 5).build(),
    ),
  );
  const { worker, blocked, release } = workerBlockedAt(storage, "ahead", BLOCK);
  const running = worker.run();
  await blocked;
  await waitUntil(() => held(tmp.db).length === 21, "the worker to hold 20 tasks ahead");
  const ahead = held(tmp.db).filter((row) => row.id !== ids[BLOCK]);
  assert.ok(
    ahead.every((row) => row.max_attempts === 5 && row.attempts === 1),
    `only tasks with attempts to spare are claimed ahead: ${JSON.stringify(ahead)}`,
  );
  release();
  await waitUntil(
    async () => (await storage.stats("ahead")).done === ids.length,
    "the worker to run every task, the skipped ones in their turn",
  );
  await worker.stop();
  await running;
  for (const id of ids) assert.equal((await storage.fetchById(id))?.attempts, 1);
});

Deno.test("Worker does not claim slow tasks ahead: other workers can take them", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "slow");
  await storage.pushAll(Array.from({ length: 30 }, (_, i) => new Task(i)));
  let mostHeld = 0;
  let finished = 0;
  const worker = new WorkerBuilder("slow")
    .backend(storage)
    .concurrency(2)
    .handleSignals(false)
    .build(async () => {
      mostHeld = Math.max(mostHeld, held(tmp.db).length);
      // 2 slots of 50 ms: 0.4 tasks per 10 ms window, well below the one task that would be
      // claimed ahead (20 ms tasks sat on that edge: timers that fired late made 2 finish in
      // under 20 ms now and then, under the parallel test run).
      await new Promise((resolve) => setTimeout(resolve, 50));
      finished++;
    });
  const running = worker.run();
  await waitUntil(() => finished === 30, "30 slow tasks");
  await worker.stop();
  await running;
  assert.ok(mostHeld >= 1, "the probe saw the worker's own tasks");
  assert.equal(mostHeld <= 2, true, `a worker of 2 slots held ${mostHeld} tasks of 50 ms`);
});
