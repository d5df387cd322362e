/**
 * Conformance: which task runs when. Priority first, then due time, then push order; a task is
 * never claimed before it is due.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Config, Task, WorkerBuilder } from "../../mod.ts";
import { afterReads, backendTest, CountingClock, FakeClock, start } from "./_suite.ts";

for (const bufferSize of [1, 10]) {
  backendTest(
    `Worker runs tasks by priority, then due time, then push order (bufferSize ${bufferSize})`,
    async (db) => {
      const clock = new FakeClock();
      const t = clock.now();
      const storage = db.storage<string>(new Config("ordered").setBufferSize(bufferSize), {
        clock,
      });
      const ids = [
        await storage.push("low-recent", { runAt: t - 1_000 }),
        await storage.push("mid-first", { priority: 1, runAt: t - 100 }),
        await storage.push("low-oldest", { runAt: new Date(t - 10_000) }),
        await storage.push("high", { priority: 5 }),
        await storage.push("mid-second", { priority: 1, runAt: t - 100 }),
        await storage.push("low-old", { runAt: t - 5_000 }),
        await storage.push("negative", { priority: -1, runAt: t - 60_000 }),
        await storage.push("low-now"),
      ];
      const order: string[] = [];
      const worker = new WorkerBuilder(`orderer-${bufferSize}`)
        .backend(storage)
        .concurrency(1)
        .handleSignals(false)
        .build((name) => void order.push(name));
      await worker.runUntil(storage.waitFor(ids, { timeoutMs: 10_000 }));
      assert.deepEqual(order, [
        "high",
        "mid-first",
        "mid-second",
        "low-oldest",
        "low-old",
        "low-recent",
        "low-now",
        "negative",
      ]);
    },
  );
}

backendTest(
  "Worker runs tasks of one priority in push order (FIFO) across pushAll, pushStream and push",
  async (db) => {
    const clock = new FakeClock();
    const storage = db.storage<string>(new Config("fifo").setBufferSize(5), { clock });
    // Interleaved priorities in one pushAll: the highest ones first, each priority in order.
    const batch = Array.from({ length: 60 }, (_, i) => new Task(`b${i}`, { priority: i % 3 }));
    const ids = await storage.pushAll(batch);
    clock.advance(1);
    ids.push(...await storage.pushStream(["s0", "s1", "s2", "s3"], { batchSize: 3, priority: 1 }));
    clock.advance(1);
    ids.push(await storage.push("p0", { priority: 2 }));
    const order: string[] = [];
    const worker = new WorkerBuilder("fifo-worker")
      .backend(storage)
      .concurrency(1)
      .handleSignals(false)
      .build((name) => void order.push(name));
    await worker.runUntil(storage.waitFor(ids, { timeoutMs: 10_000 }));
    const of = (priority: number) => Array.from({ length: 20 }, (_, k) => `b${3 * k + priority}`);
    assert.deepEqual(order, [
      ...of(2),
      "p0",
      ...of(1),
      "s0",
      "s1",
      "s2",
      "s3",
      ...of(0),
    ]);
  },
);

backendTest(
  "Worker never claims a task before its runAfter or runAt, and claims it once the clock gets there",
  async (db) => {
    const clock = new CountingClock();
    const t = clock.now();
    const storage = db.storage<string>(new Config("delayed").withPollInterval(5), { clock });
    const later1 = await storage.push("later-1", { runAfter: 60_000 });
    const later2 = await storage.pushTask(Task.builder("later-2").runAt(t + 120_000).build());
    const past = await storage.push("past", { runAt: t - 3_600_000 });
    const due = await storage.push("due");
    const ran: string[] = [];
    const worker = new WorkerBuilder("delayed-worker")
      .backend(storage)
      .concurrency(1)
      .handleSignals(false)
      .build((name) => void ran.push(name));
    await using running = start(worker);
    await storage.waitFor([past, due], { timeoutMs: 10_000 });
    // The clock stands still while the worker polls again and again.
    await afterReads(clock);
    assert.deepEqual(ran, ["past", "due"]);
    for (const [id, runAt] of [[later1, t + 60_000], [later2, t + 120_000]] as const) {
      const record = await storage.fetchById(id);
      assert.equal(record?.status, "pending");
      assert.equal(record?.attempts, 0);
      assert.equal(record?.lockBy, null);
      assert.equal(record?.runAt, runAt);
    }
    assert.deepEqual((await storage.listQueues()).map((q) => [q.name, q.oldestDueAt]), [
      ["delayed", null],
    ], "no task is due");

    clock.advance(59_999);
    await afterReads(clock);
    assert.equal((await storage.fetchById(later1))?.status, "pending", "1 ms early");

    clock.advance(1);
    await storage.waitFor(later1, { timeoutMs: 10_000 });
    await afterReads(clock);
    assert.equal((await storage.fetchById(later2))?.status, "pending");

    clock.advance(60_000);
    await storage.waitFor(later2, { timeoutMs: 10_000 });
    await running.stop();
    assert.deepEqual(ran, ["past", "due", "later-1", "later-2"]);
    const counts = await storage.stats("delayed");
    assert.deepEqual([counts.done, counts.total], [4, 4]);
  },
);
