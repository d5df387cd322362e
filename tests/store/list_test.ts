import assert from "node:assert/strict";
import { SqliteStorage, Task } from "../../mod.ts";
import { FakeClock, tempDatabase } from "../_helpers.ts";

Deno.test("SqliteStorage.listTasks() of one queue lists every state once, newest first, small queue or big", async () => {
  await using tmp = await tempDatabase();
  const clock = new FakeClock();
  const small = new SqliteStorage<number>(tmp.db, "small", { clock });
  const big = small.forQueue<number>("big");
  // One task of the small queue in each state, among others of the big queue.
  const ids = await small.pushAll(Array.from({ length: 12 }, (_, i) => new Task(i)));
  await big.pushAll(Array.from({ length: 20_000 }, (_, i) => new Task(i)));
  const states = ["pending", "queued", "running", "done", "failed", "killed"];
  for (const [i, id] of ids.entries()) {
    tmp.db.run("UPDATE apalis_tasks SET status = ?, lock_by = ? WHERE id = ?", [
      states[i % states.length]!,
      i % 6 === 1 || i % 6 === 2 ? "w" : null,
      id,
    ]);
  }
  await big.pushAll(Array.from({ length: 5 }, (_, i) => new Task(i)));
  const newest = (queue: string, n: number, offset = 0) =>
    tmp.db.all<{ id: string }>(
      "SELECT id FROM apalis_tasks WHERE queue = ? ORDER BY id DESC LIMIT ? OFFSET ?",
      [queue, n, offset],
    ).map((row) => row.id);

  const listed = async (storage: SqliteStorage<number>, page: number, pageSize: number) =>
    (await storage.listTasks({ queue: storage.queue, page, pageSize })).map((task) => task.id);
  assert.deepEqual(await listed(small, 1, 5), newest("small", 5));
  assert.deepEqual(await listed(small, 2, 5), newest("small", 5, 5));
  assert.deepEqual(await listed(small, 3, 5), newest("small", 5, 10), "the last, short page");
  assert.deepEqual((await listed(small, 1, 100)).length, 12, "a failed task is listed once");
  assert.deepEqual(await listed(big, 1, 7), newest("big", 7));
  assert.deepEqual(await listed(big, 3, 7), newest("big", 7, 14));
});
