import assert from "node:assert/strict";
import { openDatabase, SqliteStorage, Task } from "../../mod.ts";
import { FakeClock, tempDatabase } from "../_helpers.ts";

/** Pushes `n` tasks to `queue` and marks them `status` at `doneAt`; returns their ids. */
async function finished(
  storage: SqliteStorage<number>,
  queue: string,
  n: number,
  status: "done" | "killed" | "failed",
  doneAt: number,
): Promise<string[]> {
  const ids = await storage.forQueue<number>(queue).pushAll(
    Array.from({ length: n }, (_, i) => new Task(i)),
  );
  storage.db.run(
    "UPDATE apalis_tasks SET status = ?, done_at = ? WHERE id IN (SELECT value FROM json_each(?))",
    [status, doneAt, JSON.stringify(ids)],
  );
  return ids;
}

Deno.test("SqliteStorage.vacuum() deletes exactly the old done and killed tasks when they span many batches and queues", async () => {
  await using tmp = await tempDatabase();
  const clock = new FakeClock();
  const storage = new SqliteStorage<number>(tmp.db, "a", { clock });
  const old = clock.now() - 60_000;
  const recent = clock.now();
  const gone: string[] = [];
  const kept: string[] = [];
  // Deletable and kept entries interleave in the finished-tasks index, within and across
  // queues, so that batch windows of 7 start and end on both kinds.
  for (let round = 0; round < 4; round++) {
    gone.push(...await finished(storage, "a", 5, "done", old));
    kept.push(...await finished(storage, "a", 3, "done", recent));
    kept.push(...await finished(storage, "a", 2, "failed", old)); // waits for a retry
    gone.push(...await finished(storage, "b", 4, "killed", old));
    kept.push(...await finished(storage, "b", 1, "killed", recent));
    kept.push(...await storage.forQueue<number>("c").pushAll([new Task(round)])); // pending
    gone.push(...await finished(storage, "c", 6, "done", old));
  }

  assert.equal(await storage.vacuum({ olderThanMs: 30_000, batchSize: 7 }), gone.length);
  const left = tmp.db.all<{ id: string }>("SELECT id FROM apalis_tasks").map((row) => row.id);
  assert.deepEqual(left.sort(), kept.sort());
  assert.equal(await storage.vacuum({ olderThanMs: 30_000, batchSize: 7 }), 0);
});

Deno.test("SqliteStorage.retryAll() retries every task of the queue in that state across many batches, and no other", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "a");
  const retried: string[] = [];
  const kept: string[] = [];
  for (let round = 0; round < 5; round++) {
    retried.push(...await finished(storage, "a", 5, "killed", 1));
    kept.push(...await finished(storage, "a", 2, "done", 1));
    kept.push(...await finished(storage, "b", 3, "killed", 1));
  }
  tmp.db.run("UPDATE apalis_tasks SET attempts = 5");

  assert.equal(await storage.retryAll({ queue: "a", status: "killed", batchSize: 4 }), 25);
  const rows = tmp.db.all<{ id: string; status: string; attempts: number }>(
    "SELECT id, status, attempts FROM apalis_tasks",
  );
  const byId = new Map(rows.map((row) => [row.id, row]));
  for (const id of retried) {
    assert.deepEqual({ ...byId.get(id) }, { id, status: "pending", attempts: 0 });
  }
  for (const id of kept) assert.notEqual(byId.get(id)?.status, "pending");
  assert.equal(await storage.retryAll({ queue: "a", status: "killed", batchSize: 4 }), 0);
});

for (
  const [method, status, run] of [
    ["vacuum", "done", (storage: SqliteStorage<number>) => storage.vacuum({ batchSize: 500 })],
    [
      "retryAll",
      "killed",
      (storage: SqliteStorage<number>) =>
        storage.retryAll({ queue: "q", status: "killed", batchSize: 500 }),
    ],
  ] as const
) {
  Deno.test(`SqliteStorage.${method}() lets this process's timers and other connections write between its batches`, async () => {
    await using tmp = await tempDatabase();
    const storage = new SqliteStorage<number>(tmp.db, "q");
    const n = 20_000;
    await finished(storage, "q", n, status, Date.now() - 60_000);
    tmp.db.exec("CREATE TABLE probe (at REAL NOT NULL)");
    // Another connection to the file that never waits for the lock: a write either gets it at
    // once or fails.
    const other = openDatabase(tmp.path, { busyTimeoutMs: 0 });
    let working = false;
    let ticks = 0;
    let writes = 0;
    const timer = setInterval(() => {
      if (!working) return;
      ticks++;
      try {
        other.run("INSERT INTO probe (at) VALUES (?)", [performance.now()]);
        writes++;
      } catch {
        // locked by a batch at this moment
      }
    }, 1);
    try {
      working = true;
      assert.equal(await run(storage), n);
      working = false;
    } finally {
      clearInterval(timer);
      other.close();
    }
    // One transaction for all of it would have frozen the event loop until it committed.
    assert.ok(ticks > 0, `the interval timer never ran during ${method}()`);
    assert.ok(writes > 0, `no write of another connection got in (${ticks} ticks)`);
    const left = tmp.db.get<{ n: number }>(
      "SELECT count(*) AS n FROM apalis_tasks WHERE status = ?",
      [status],
    );
    assert.equal(left?.n, 0);
  });
}

Deno.test("SqliteStorage.vacuum() and retryAll() reject a batchSize that is not a whole number >= 1", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "q");
  await finished(storage, "q", 3, "done", 0);
  for (const batchSize of [0, -1, 1.5, Number.NaN]) {
    for (
      const call of [
        () => storage.vacuum({ batchSize }),
        () => storage.retryAll({ queue: "q", status: "done", batchSize }),
      ]
    ) {
      await assert.rejects(
        call(),
        (error: unknown) => error instanceof RangeError && error.message.includes("'batchSize'"),
      );
    }
  }
  const done = tmp.db.get<{ n: number }>(
    "SELECT count(*) AS n FROM apalis_tasks WHERE status = 'done'",
  );
  assert.equal(done?.n, 3, "nothing was deleted or retried");
});
