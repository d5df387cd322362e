/**
 * Conformance: what a push writes. Ids are unique (`DuplicateTaskError`, the first task kept),
 * `pushAll` is all or none, `pushStream` keeps the batches it wrote, and the waits give up with
 * `WaitTimeoutError` or name what they cannot find.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  DuplicateTaskError,
  RunNotFoundError,
  Task,
  TaskNotFoundError,
  WaitTimeoutError,
  WorkerBuilder,
} from "../../mod.ts";
import { backendTest, FakeClock } from "./_suite.ts";

const isDuplicate = (id: string) => (error: unknown) =>
  error instanceof DuplicateTaskError && error.id === id && error.message.includes(id);

backendTest(
  "Storage.push() and pushStart() reject a duplicate id with DuplicateTaskError and keep the first task",
  async (db) => {
    const clock = new FakeClock();
    const storage = db.storage<string>("dupes", { clock });
    const other = db.storage<string>("elsewhere", { clock });
    assert.equal(await storage.push("first", { id: "order-1", priority: 3 }), "order-1");
    clock.advance(1_000);
    await assert.rejects(storage.push("second", { id: "order-1" }), isDuplicate("order-1"));
    await assert.rejects(other.push("third", { id: "order-1" }), isDuplicate("order-1"));
    await assert.rejects(storage.pushStart("run", { id: "order-1" }), isDuplicate("order-1"));
    const task = await storage.fetchById("order-1");
    assert.deepEqual(
      [task?.args, task?.queue, task?.priority, task?.createdAt, task?.runId],
      ["first", "dupes", 3, clock.now() - 1_000, null],
    );
    assert.equal((await db.admin().stats()).total, 1);
    assert.deepEqual(await db.admin().listRuns(), [], "the refused pushStart left no run");
  },
);

backendTest(
  "Storage.pushAll() writes all tasks or none: a duplicate within the batch or of a stored task writes nothing",
  async (db) => {
    const storage = db.storage<number>("batch");
    await storage.push(0, { id: "taken" });
    await assert.rejects(
      storage.pushAll([new Task(1), new Task(2, { id: "twice" }), new Task(3, { id: "twice" })]),
      isDuplicate("twice"),
    );
    await assert.rejects(
      storage.pushAll([new Task(4), new Task(5), new Task(6, { id: "taken" }), new Task(7)]),
      isDuplicate("taken"),
    );
    // Big enough to take several statements on PostgreSQL: the last one's duplicate undoes all.
    const big = Array.from({ length: 2_500 }, (_, i) => new Task(100 + i));
    big[2_400] = new Task(-1, { id: "taken" });
    await assert.rejects(storage.pushAll(big), isDuplicate("taken"));
    assert.deepEqual((await storage.listTasks()).map((t) => t.args), [0], "nothing was written");
    big[2_400] = new Task(-1);
    assert.equal(new Set(await storage.pushAll(big)).size, 2_500);
    assert.equal((await storage.stats("batch")).pending, 2_501);

    const ids = await storage.pushAll(
      (async function* () {
        for (let n = 1; n <= 5; n++) yield new Task(n, { priority: n });
      })(),
    );
    assert.equal(new Set(ids).size, 5);
    const stored = await storage.waitFor(ids, { timeoutMs: 0 }).catch((e) => e);
    assert.ok(stored instanceof WaitTimeoutError, "pending tasks are not finished");
    assert.deepEqual(stored.pending, ids);
    for (const [i, id] of ids.entries()) {
      const task = await storage.fetchById(id);
      assert.deepEqual([task?.args, task?.priority, task?.status], [i + 1, i + 1, "pending"]);
    }
  },
);

backendTest(
  "Storage.pushStream() writes in batches and keeps the batches written before a failure",
  async (db) => {
    const storage = db.storage<number>("stream");
    const ids = await storage.pushStream(
      (function* () {
        for (let n = 0; n < 25; n++) yield n;
      })(),
      { batchSize: 10, maxAttempts: 2 },
    );
    assert.equal(ids.length, 25);
    const tasks = await Promise.all(ids.map((id) => storage.fetchById(id)));
    assert.deepEqual(tasks.map((t) => t?.args), Array.from({ length: 25 }, (_, n) => n));
    assert.ok(tasks.every((t) => t?.maxAttempts === 2));

    // NaN (refused by JSON) is the fifth item: the first batch of 2 and the second are written.
    await assert.rejects(
      storage.pushStream([100, 101, 102, 103, NaN, 105], { batchSize: 2 }),
      TypeError,
    );
    assert.equal((await storage.stats("stream")).total, 29);
  },
);

backendTest(
  "Admin.waitFor() and waitForRun() reject with WaitTimeoutError, TaskNotFoundError and RunNotFoundError",
  async (db) => {
    const storage = db.storage<string>("waits");
    const admin = db.admin();
    const pending = await storage.push("never runs", { runAfter: 3_600_000 });
    const finished = await storage.push("finished");
    const worker = new WorkerBuilder("waiter").backend(storage).handleSignals(false)
      .build((text) => text.length);
    await worker.runUntil(storage.waitFor(finished, { timeoutMs: 10_000 }));

    await assert.rejects(
      admin.waitFor([finished, pending], { timeoutMs: 50, pollMs: 10 }),
      (error: unknown) =>
        error instanceof WaitTimeoutError && error.pending.length === 1 &&
        error.pending[0] === pending && error.message.includes("50 ms"),
    );
    await assert.rejects(
      admin.waitFor([finished, "missing-task"], { timeoutMs: 1_000 }),
      (error: unknown) => error instanceof TaskNotFoundError && error.id === "missing-task",
    );
    const [record] = await admin.waitFor([finished], { timeoutMs: 0 });
    assert.equal(record?.lastResult, 8, "a finished task needs no wait");

    const runId = await storage.pushStart("a run no worker takes", { runAfter: 3_600_000 });
    await assert.rejects(
      admin.waitForRun(runId, { timeoutMs: 50, pollMs: 10 }),
      (error: unknown) => error instanceof WaitTimeoutError && error.message.includes("50 ms"),
    );
    await assert.rejects(
      admin.waitForRun("missing-run", { timeoutMs: 1_000 }),
      (error: unknown) => error instanceof RunNotFoundError && error.id === "missing-run",
    );
    assert.equal(await admin.workflowRun("missing-run"), undefined);
    assert.equal((await admin.workflowRun(runId))?.status, "running");
  },
);
