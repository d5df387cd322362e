/**
 * Conformance, across processes: worker processes (`worker_child.ts`) on one database. Four of
 * them drain a queue with every task done exactly once; a worker killed with `kill -9` mid-drain
 * leaves its tasks to a second worker, which finishes everything with re-runs bounded by what
 * the dead one held.
 *
 * Every handler start is recorded in a file (one `write(2)` per line), so that executions are
 * counted outside the database.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Task } from "../../mod.ts";
import { countBy, crashChild, readRecords, spawnChild, stopChild } from "./_child.ts";
import { backendTest, waitUntil } from "./_suite.ts";

/** Liveness bound for a drain (not a speed assertion). */
const DRAIN_TIMEOUT_MS = 90_000;

backendTest(
  "cross-process: 4 worker processes run each attempt of 2,000 tasks exactly once (attempt 1 fails, attempt 2 succeeds)",
  async (db, t) => {
    const total = 2_000;
    const queue = "multi";
    const dir = await Deno.makeTempDir({ prefix: "apalis_records_" });
    const record = `${dir}/starts.log`;
    const names = ["w1", "w2", "w3", "w4"];
    const children = names.map((name) =>
      spawnChild(db.location, name, [
        "--queue",
        queue,
        "--concurrency",
        "8",
        "--sleep-ms",
        "1",
        "--fail-first",
        "1",
        "--backoff-ms",
        "0",
        "--record",
        record,
      ])
    );
    try {
      await Promise.all(children.map((child) => child.ready));
      // Pushed once every worker waits: they all see it (a wake-up from another process).
      const storage = db.storage<{ n: number }>(queue);
      const ids = await storage.pushAll(Array.from({ length: total }, (_, n) => new Task({ n })));
      await waitUntil(
        async () => (await storage.stats(queue)).done === total,
        `all ${total} tasks to be done`,
        DRAIN_TIMEOUT_MS,
      );
      await Promise.all(children.map(stopChild));

      assert.deepEqual(await storage.stats(queue), {
        pending: 0,
        queued: 0,
        running: 0,
        done: total,
        failed: 0,
        killed: 0,
        total,
      });
      const tasks = await storage.listTasks({ queue, pageSize: total });
      assert.deepEqual(tasks.map((task) => task.id).sort(), [...ids].sort());
      assert.deepEqual(
        tasks.filter((task) => task.attempts !== 2).map((task) => [task.id, task.attempts]),
        [],
        "every task took exactly 2 attempts",
      );
      for (const task of tasks) {
        assert.ok(names.includes(task.lockBy ?? ""), `task ${task.id} done by ${task.lockBy}`);
        assert.equal(task.lastResult, 2, "the handler's result (its attempt) is stored");
      }
      const starts = await readRecords(record);
      const perAttempt = countBy(starts, (start) => `${start.taskId} ${start.attempt}`);
      assert.equal(perAttempt.size, 2 * total, "every attempt of every task ran");
      assert.deepEqual([...perAttempt].filter(([, n]) => n !== 1), [], "no attempt ran twice");
      assert.equal(starts.length, 2 * total);
      const workers = await storage.listWorkers(queue);
      assert.deepEqual(workers.map((w) => w.name).sort(), names);
      assert.ok(workers.every((w) => !w.alive && w.stoppedAt !== null), "all stopped cleanly");
      assert.deepEqual(
        new Set(starts.map((s) => s.pid)),
        new Set(children.map((c) => c.pid)),
        "each process recorded its own pid",
      );
      const perWorker = countBy(starts, (start) => start.worker);
      const distribution = JSON.stringify(Object.fromEntries(perWorker));
      await t.step(`attempts started per process: ${distribution}`, () => {
        assert.ok(names.every((name) => (perWorker.get(name) ?? 0) > 0), "every process worked");
      });
    } finally {
      for (const child of children) await child[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

backendTest(
  "cross-process: after kill -9 of a worker mid-drain, a second worker finishes every task; re-runs only of what the dead one held",
  async (db, t) => {
    const total = 1_000;
    const queue = "crash";
    const dir = await Deno.makeTempDir({ prefix: "apalis_records_" });
    const record = `${dir}/starts.log`;
    const storage = db.storage<{ n: number }>(queue);
    await storage.pushAll(Array.from({ length: total }, (_, n) => new Task({ n })));
    // Both call a worker dead after 1 s without a heartbeat (every 100 ms while alive).
    const common = [
      "--queue",
      queue,
      "--concurrency",
      "8",
      "--sleep-ms",
      "3",
      "--keep-alive-ms",
      "100",
      "--orphan-after-ms",
      "1000",
      "--record",
      record,
    ];
    const victim = spawnChild(db.location, "victim", common);
    let survivor: ReturnType<typeof spawnChild> | undefined;
    try {
      await victim.ready;
      await waitUntil(
        async () => (await readRecords(record)).length >= 200,
        "the victim to start 200 tasks",
        DRAIN_TIMEOUT_MS,
      );
      await crashChild(victim);

      // What the dead process held: started, finished but not recorded, or claimed ahead.
      const held = await storage.listTasks({ queue, status: "running", pageSize: total });
      const heldIds = new Set(held.map((t) => t.id));
      assert.ok(held.length > 0, "the kill should leave tasks running under the victim");
      assert.ok(held.every((t) => t.lockBy === "victim"));
      const before = await storage.stats(queue);
      assert.ok(before.done < total, "the kill came before the queue was drained");
      const [victimInfo] = await storage.listWorkers(queue);
      assert.deepEqual([victimInfo?.name, victimInfo?.stoppedAt], ["victim", null]);

      survivor = spawnChild(db.location, "survivor", common);
      await survivor.ready;
      await waitUntil(
        async () => (await storage.stats(queue)).done === total,
        `all ${total} tasks to be done`,
        DRAIN_TIMEOUT_MS,
      );
      await stopChild(survivor);

      assert.deepEqual(await storage.stats(queue), {
        pending: 0,
        queued: 0,
        running: 0,
        done: total,
        failed: 0,
        killed: 0,
        total,
      });
      const starts = await readRecords(record);
      const perTask = countBy(starts, (start) => start.taskId);
      assert.equal(perTask.size, total, "every task ran at least once");
      const reRun = [...perTask].filter(([, n]) => n > 1).map(([id]) => id);
      const reRuns = starts.length - total;
      await t.step(
        `kill -9 after ${before.done} done left ${held.length} held by the victim; ${reRuns} re-runs`,
        () => {},
      );
      assert.ok(
        reRuns <= held.length,
        `${reRuns} re-runs, but the victim held only ${held.length} tasks`,
      );
      for (const id of reRun) assert.ok(heldIds.has(id), `task ${id} ran twice but was not held`);
      assert.ok(
        [...perTask.values()].every((n) => n <= 2),
        "no task ran more than twice (one kill)",
      );
      const tasks = await storage.listTasks({ queue, pageSize: total });
      const retried = tasks.filter((t) => t.attempts > 1).map((t) => t.id).sort();
      assert.deepEqual(retried, [...heldIds].sort(), "exactly the held tasks needed a 2nd attempt");
      assert.ok(
        tasks.filter((t) => heldIds.has(t.id)).every((t) => t.lockBy === "survivor"),
        "the survivor finished what the victim held",
      );
      const victimAfter = (await storage.listWorkers(queue)).find((w) => w.name === "victim");
      assert.equal(victimAfter?.alive, false);
      assert.notEqual(victimAfter?.stoppedAt, null, "the survivor marked the dead worker stopped");
    } finally {
      await victim[Symbol.asyncDispose]();
      await survivor?.[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

backendTest(
  "cross-process: SIGTERM stops a worker gracefully: running handlers finish, tasks claimed ahead go back with their attempt",
  async (db) => {
    const total = 1_000;
    const queue = "graceful";
    const dir = await Deno.makeTempDir({ prefix: "apalis_records_" });
    const record = `${dir}/starts.log`;
    const storage = db.storage<{ n: number }>(queue);
    await storage.pushAll(Array.from({ length: total }, (_, n) => new Task({ n })));
    // Quick tasks at 2 slots: the worker claims several ahead of its slots.
    const child = spawnChild(db.location, "graceful", [
      "--queue",
      queue,
      "--concurrency",
      "2",
      "--sleep-ms",
      "2",
      "--record",
      record,
    ]);
    try {
      await child.ready;
      await waitUntil(
        async () =>
          (await readRecords(record)).length >= 10 && (await storage.stats(queue)).running > 2,
        "the worker to hold tasks ahead of its 2 slots",
        DRAIN_TIMEOUT_MS,
      );
      await stopChild(child);

      const counts = await storage.stats(queue);
      assert.deepEqual(
        [counts.queued, counts.running, counts.failed, counts.killed],
        [0, 0, 0, 0],
        `nothing left held or failed: ${JSON.stringify(counts)}`,
      );
      assert.equal(counts.done + counts.pending, total);
      assert.ok(counts.pending > 0, "the stop came before the queue was drained");
      const pending = await storage.listTasks({ queue, status: "pending", pageSize: total });
      assert.deepEqual(
        pending.filter((task) => task.attempts !== 0 || task.lockBy !== null).map((task) =>
          task.id
        ),
        [],
        "tasks claimed ahead go back to pending with their attempt given back",
      );
      const started = countBy(await readRecords(record), (start) => start.taskId);
      assert.equal(started.size, counts.done, "every task that started finished done");
      assert.deepEqual([...started.values()].filter((n) => n !== 1), [], "none started twice");
      const [worker] = await storage.listWorkers(queue);
      assert.ok(worker && !worker.alive && worker.stoppedAt !== null, "the worker is stopped");
    } finally {
      await child[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
