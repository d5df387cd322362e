// deno-lint-ignore-file no-console
/**
 * Conformance: cancelling a running task. `Admin.kill()` aborts the handler's `ctx.signal` with
 * a `KilledError` naming the task and the reason: at once in the process that killed it (before
 * `kill()` resolves), and, from another process, at the worker's next check of its running
 * attempts (every 500 ms). The slot frees at once, even for a handler that ignores its signal;
 * the killed attempt's outcome is discarded and the task stays killed. An attempt whose task is
 * deleted under it aborts with an `AttemptLostError`.
 *
 * The latencies measured across processes are printed (they are not asserted beyond a liveness
 * bound: the machine may be loaded).
 *
 * @module
 */
import assert from "node:assert/strict";
import { AttemptLostError, KilledError, Task, WorkerBuilder } from "../../mod.ts";
import { countBy, readAborts, readRecords, spawnChild, stopChild } from "./_child.ts";
import {
  assertNoneHeld,
  backendTest,
  eventLog,
  gate,
  start,
  taskErrors,
  waitUntil,
} from "./_suite.ts";

/** A bound on how long a kill from another process takes to reach the handler (liveness). */
const CROSS_PROCESS_BOUND_MS = 3_000;

backendTest(
  "Admin.kill() of a running task in the same process aborts ctx.signal before kill() resolves, with a KilledError; the slot frees even if the handler ignores it",
  async (db) => {
    const queue = "cancel-here";
    const storage = db.storage<{ name: string }>(queue);
    const admin = db.admin();
    const log = eventLog();
    const started = new Map<string, () => void>();
    const whenStarted = (name: string) =>
      new Promise<void>((resolve) => started.set(name, resolve));
    const reasons = new Map<string, unknown>();
    const ignoring = gate();
    let ignoredFinished = false;
    const worker = new WorkerBuilder("canceller")
      .backend(storage)
      .concurrency(1)
      .handleSignals(false)
      .onEvent(log.listener)
      .build(async ({ name }, ctx) => {
        started.get(name)?.();
        if (name === "obeys") {
          await new Promise((_, reject) =>
            ctx.signal.addEventListener("abort", () => {
              reasons.set(name, ctx.signal.reason);
              reject(ctx.signal.reason);
            })
          );
        }
        if (name === "ignores") {
          ctx.signal.addEventListener("abort", () => reasons.set(name, ctx.signal.reason));
          await ignoring.promise; // runs on after the kill
          ignoredFinished = true;
          return "late result";
        }
        return name.toUpperCase();
      });
    await using running = start(worker);

    const obeysStarted = whenStarted("obeys");
    const obeys = await storage.push({ name: "obeys" });
    await obeysStarted;
    await admin.kill(obeys, "customer cancelled");
    const obeyed = reasons.get("obeys");
    assert.ok(obeyed instanceof KilledError, `aborted before kill() resolved: ${obeyed}`);
    assert.equal(obeyed.taskId, obeys);
    assert.equal(obeyed.reason, "customer cancelled");
    assert.equal(obeyed.name, "KilledError");
    assert.equal(obeyed.message, `Task '${obeys}' was killed: customer cancelled`);

    // A handler that ignores its signal keeps running, but its slot (the only one) is free.
    const ignoresStarted = whenStarted("ignores");
    const ignores = await storage.push({ name: "ignores" });
    await ignoresStarted;
    await admin.kill(ignores, "runaway");
    assert.ok(reasons.get("ignores") instanceof KilledError);
    assert.equal(worker.inFlight, 0, "the slot is free at once");
    const quick = await storage.pushAll(["a", "b", "c"].map((name) => new Task({ name })));
    await waitUntil(
      async () => (await storage.stats(queue)).done === quick.length,
      "the quick tasks to be done while the ignoring handler still runs",
    );
    assert.equal(ignoredFinished, false, "the ignoring handler is still running");
    ignoring.open();
    await waitUntil(() => ignoredFinished, "the ignoring handler to finish");
    await running.stop();

    assert.deepEqual(await storage.stats(queue), {
      pending: 0,
      queued: 0,
      running: 0,
      done: 3,
      failed: 0,
      killed: 2,
      total: 5,
    });
    for (const [id, reason] of [[obeys, "customer cancelled"], [ignores, "runaway"]]) {
      const task = await storage.fetchById(id!);
      assert.equal(task?.status, "killed");
      assert.equal(task?.attempts, 1, "never run again");
      assert.equal(task?.lastResult, undefined, "no late result stored");
      assert.deepEqual([task?.lastError?.name, task?.lastError?.message], ["KilledError", reason]);
    }
    for (const id of quick) assert.equal((await storage.fetchById(id))?.status, "done");
    const errors = taskErrors(log.events);
    assert.deepEqual(
      errors.map((e) => [e.task?.taskId, e.status, (e.error as Error).name]),
      [[obeys, "killed", "KilledError"], [ignores, "killed", "KilledError"]],
      "one event per kill, and none for the late outcomes",
    );
    assert.equal(log.events.filter((e) => e.type === "success").length, 3);
    await assertNoneHeld(admin);
  },
);

backendTest(
  "a task deleted under its running handler (another connection) aborts ctx.signal with an AttemptLostError, and frees the slot",
  async (db) => {
    const queue = "cancel-deleted";
    const storage = db.storage<{ name: string }>(queue);
    const other = await db.connect(); // no in-process notice: the worker's check finds it
    const started = gate();
    let reason: unknown;
    const worker = new WorkerBuilder("deleted")
      .backend(storage)
      .concurrency(1)
      .handleSignals(false)
      .build(async ({ name }, ctx) => {
        if (name !== "held") return name;
        started.open();
        await new Promise((_, reject) =>
          ctx.signal.addEventListener("abort", () => reject(reason = ctx.signal.reason))
        );
      });
    await using running = start(worker);
    const held = await storage.push({ name: "held" });
    await started.promise;
    assert.equal(await other.admin().delete(held), true);
    await waitUntil(() => reason !== undefined, "the handler's signal to abort");
    assert.ok(reason instanceof AttemptLostError, `the reason: ${reason}`);
    assert.equal(reason.taskId, held);
    assert.equal(reason.attempt, 1);
    assert.match(reason.message, /no longer held by worker 'deleted': the task was deleted$/);
    const next = await storage.push({ name: "next" });
    await waitUntil(
      async () => (await storage.fetchById(next))?.status === "done",
      "the next task to run in the freed slot",
    );
    await running.stop();
    assert.equal(await storage.fetchById(held), undefined);
    assert.deepEqual(await storage.stats(queue), {
      pending: 0,
      queued: 0,
      running: 0,
      done: 1,
      failed: 0,
      killed: 0,
      total: 1,
    });
  },
);

backendTest(
  "cross-process: Admin.kill() aborts the ctx.signal of a handler in a worker process with a KilledError; the attempt is not recorded, the task stays killed, the slot runs the next tasks",
  async (db) => {
    const queue = "cancel-there";
    const dir = await Deno.makeTempDir({ prefix: "apalis_cancel_" });
    const aborts = `${dir}/aborts.log`;
    const record = `${dir}/starts.log`;
    await using child = spawnChild(db.location, "far", [
      "--queue",
      queue,
      "--concurrency",
      "1",
      "--aborts",
      aborts,
      "--record",
      record,
      "--host",
      "another-host", // it stands for a worker on another machine: only the database is shared
    ]);
    try {
      await child.ready;
      const storage = db.storage<{ hold?: boolean; n: number }>(queue);
      const admin = db.admin();
      const kills = 3;
      const held: string[] = [];
      const latencies: number[] = [];
      for (let n = 0; n < kills; n++) {
        const id = await storage.push({ hold: true, n });
        held.push(id);
        await waitUntil(
          async () => (await readRecords(record)).some((start) => start.taskId === id),
          `held task ${n} to start in the child`,
        );
        const killedAt = Date.now();
        await admin.kill(id, `stop ${n}`);
        await waitUntil(
          async () => (await readAborts(aborts)).some((abort) => abort.taskId === id),
          `the child's handler of task ${n} to see its signal abort`,
          CROSS_PROCESS_BOUND_MS * 10,
        );
        const abort = (await readAborts(aborts)).find((a) => a.taskId === id)!;
        latencies.push(abort.at - killedAt);
        assert.equal(abort.name, "KilledError");
        assert.equal(abort.message, `Task '${id}' was killed: stop ${n}`);
      }
      console.log(`[${db.backend}] cross-process kill → abort latencies (ms): ${latencies}`);
      for (const latency of latencies) {
        assert.ok(
          latency < CROSS_PROCESS_BOUND_MS,
          `a kill reached the other process within ${CROSS_PROCESS_BOUND_MS} ms: ${latencies}`,
        );
      }
      // The only slot is free again: the next tasks run.
      const quick = await storage.pushAll(
        Array.from({ length: 5 }, (_, n) => new Task({ n: 100 + n })),
      );
      await waitUntil(
        async () => (await storage.stats(queue)).done === quick.length,
        "the quick tasks to be done by the child",
      );
      await stopChild(child);

      assert.deepEqual(await storage.stats(queue), {
        pending: 0,
        queued: 0,
        running: 0,
        done: quick.length,
        failed: 0,
        killed: kills,
        total: quick.length + kills,
      });
      for (const [n, id] of held.entries()) {
        const task = await storage.fetchById(id);
        assert.equal(task?.status, "killed", "the task stays killed");
        assert.equal(task?.attempts, 1);
        assert.equal(task?.lastResult, undefined, "the attempt is not recorded");
        assert.deepEqual([task?.lastError?.name, task?.lastError?.message], [
          "KilledError",
          `stop ${n}`,
        ]);
      }
      for (const id of quick) {
        const task = await storage.fetchById(id);
        assert.deepEqual([task?.status, task?.lastResult], ["done", 1]);
      }
      const starts = await readRecords(record);
      const perTask = countBy(starts, (s) => s.taskId);
      assert.deepEqual([...perTask.keys()].sort(), [...held, ...quick].sort());
      assert.deepEqual([...perTask].filter(([, n]) => n !== 1), [], "each task started once");
      assert.equal((await readAborts(aborts)).length, kills, "one abort per kill");
      await assertNoneHeld(admin);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
