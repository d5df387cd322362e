/**
 * Conformance: what an operator does to tasks through `Admin`: kill (a pending task never runs;
 * a running task's late outcome is discarded: reported at once in the same process, fenced by
 * attempt when the worker learns it later), retry, retryAll, delete and vacuum.
 *
 * @module
 */
import assert from "node:assert/strict";
import { KilledError, Task, TaskNotFoundError, TaskStateError, WorkerBuilder } from "../../mod.ts";
import {
  assertNoneHeld,
  backendTest,
  eventLog,
  FakeClock,
  gate,
  start,
  taskErrors,
  waitUntil,
} from "./_suite.ts";

backendTest(
  "Admin.kill() of a pending task: it never runs, its error is the reason, and it cannot be killed twice",
  async (db) => {
    const clock = new FakeClock();
    const storage = db.storage<string>("kill-pending", { clock });
    const admin = db.admin({ clock });
    const doomed = await storage.push("doomed");
    const kept = await storage.push("kept");
    clock.advance(250);
    const killed = await admin.kill(doomed, "no longer needed");
    assert.equal(killed.status, "killed");
    assert.equal(killed.attempts, 0);
    assert.deepEqual(
      [killed.lastError?.name, killed.lastError?.message],
      ["KilledError", "no longer needed"],
    );
    assert.equal(killed.doneAt, clock.now());
    assert.deepEqual(await storage.fetchById(doomed), killed);

    const ran: string[] = [];
    const worker = new WorkerBuilder("killer").backend(storage).handleSignals(false)
      .build((name) => void ran.push(name));
    await worker.runUntil(storage.waitFor(kept, { timeoutMs: 10_000 }));
    assert.deepEqual(ran, ["kept"], "the killed task never ran");
    assert.equal((await storage.fetchById(doomed))?.status, "killed");

    await assert.rejects(
      admin.kill(doomed),
      (error: unknown) =>
        error instanceof TaskStateError && error.id === doomed && error.status === "killed",
    );
    await assert.rejects(
      admin.kill(kept),
      (error: unknown) => error instanceof TaskStateError && error.status === "done",
    );
    await assert.rejects(admin.kill("no-such-task"), TaskNotFoundError);
    assert.equal((await storage.fetchById(kept))?.lastResult, undefined);
  },
);

backendTest(
  "Admin.kill() of a running task: the worker reports the kill at once, the handler runs to its end, its outcome is discarded, the task stays killed; retry() refuses it while running",
  async (db) => {
    const storage = db.storage<string>("kill-running");
    const admin = db.admin();
    const id = await storage.push("long", { maxAttempts: 3 });
    const release = gate();
    const started = gate();
    let finished = 0;
    const log = eventLog();
    const worker = new WorkerBuilder("fenced")
      .backend(storage)
      .handleSignals(false)
      .onEvent(log.listener)
      .build(async (name) => {
        started.open();
        await release.promise;
        finished++;
        return `${name} finished`;
      });
    await using running = start(worker);
    await started.promise;
    assert.equal((await storage.fetchById(id))?.status, "running");
    await assert.rejects(
      admin.retry(id),
      (error: unknown) => error instanceof TaskStateError && error.status === "running",
      "a running task cannot be retried",
    );
    const killed = await admin.kill(id, "cancelled while running");
    assert.equal(killed.status, "killed");
    // Reported when the kill committed, before the handler (which ignores its signal) ends.
    const [error] = taskErrors(log.events);
    assert.ok(error?.error instanceof KilledError, `the reported error: ${error?.error}`);
    assert.equal(error.status, "killed");
    assert.equal(error.error.message, `Task '${id}' was killed: cancelled while running`);
    release.open();
    await waitUntil(() => finished === 1, "the handler to run to its end");
    await running.stop();

    assert.equal(taskErrors(log.events).length, 1, "the late outcome is not reported");
    assert.equal(log.events.some((e) => e.type === "success"), false, "no success was reported");
    const task = await storage.fetchById(id);
    assert.equal(task?.status, "killed");
    assert.equal(task?.attempts, 1, "never run again");
    assert.equal(task?.lastResult, undefined, "the late result was not stored");
    assert.equal(task?.lastError?.message, "cancelled while running");
    const outcomes = (await admin.throughput({ queue: "kill-running" }))
      .reduce((sum, p) => [sum[0]! + p.done, sum[1]! + p.failed, sum[2]! + p.killed], [0, 0, 0]);
    assert.deepEqual(outcomes, [0, 0, 1], "[done, failed, killed]: only the kill counts");
    await assertNoneHeld(admin);
  },
);

backendTest(
  "Admin.kill() from another connection of a task whose handler then returns at once: the ack is fenced, the outcome discarded",
  async (db) => {
    const storage = db.storage<string>("kill-fenced");
    const other = (await db.connect()).admin(); // no notice in this connection: only the fence
    const id = await storage.push("long", { maxAttempts: 3 });
    const log = eventLog();
    const worker = new WorkerBuilder("fenced")
      .backend(storage)
      .handleSignals(false)
      .onEvent(log.listener)
      .build(async (name, ctx) => {
        // Killed before its worker's first check of its attempts (they are checked from 200 ms).
        await other.kill(ctx.taskId, "cancelled while running");
        return `${name} finished`;
      });
    await using running = start(worker);
    await waitUntil(() => taskErrors(log.events).length === 1, "the late outcome to be reported");
    await running.stop();

    const [error] = taskErrors(log.events);
    assert.match(String((error?.error as Error).message), /discarded/);
    assert.equal(log.events.some((e) => e.type === "success"), false, "no success was reported");
    const task = await storage.fetchById(id);
    assert.equal(task?.status, "killed");
    assert.equal(task?.attempts, 1, "never run again");
    assert.equal(task?.lastResult, undefined, "the late result was not stored");
    assert.equal(task?.lastError?.message, "cancelled while running");
    await assertNoneHeld(db.admin());
  },
);

backendTest(
  "Admin.retry() runs a killed task again from a fresh attempt budget",
  async (db) => {
    const clock = new FakeClock();
    const storage = db.storage<string>("retry", { clock });
    const admin = db.admin({ clock });
    const id = await storage.push("fails once", { maxAttempts: 1 });
    let calls = 0;
    const handler = (text: string) => {
      if (++calls === 1) throw new Error("broken");
      return text.toUpperCase();
    };
    const first = new WorkerBuilder("first").backend(storage).handleSignals(false).build(handler);
    await first.runUntil(storage.waitFor(id, { timeoutMs: 10_000 }));
    const killed = await storage.fetchById(id);
    assert.deepEqual([killed?.status, killed?.attempts], ["killed", 1]);

    clock.advance(5_000);
    const retried = await admin.retry(id);
    assert.equal(retried.status, "pending");
    assert.equal(retried.attempts, 0);
    assert.equal(retried.runAt, clock.now());
    assert.equal(retried.doneAt, null);
    assert.deepEqual(await storage.fetchById(id), retried);
    await assert.rejects(admin.retry("no-such-task"), TaskNotFoundError);

    const second = new WorkerBuilder("second").backend(storage).handleSignals(false).build(handler);
    await second.runUntil(storage.waitFor(id, { timeoutMs: 10_000 }));
    const done = await storage.fetchById(id);
    assert.deepEqual([done?.status, done?.attempts, done?.lastResult], ["done", 1, "FAILS ONCE"]);
    assert.equal(calls, 2);
  },
);

backendTest(
  "Admin.retryAll() retries only the queue and status asked for, in batches, and returns the count",
  async (db) => {
    const alpha = db.storage<number>("alpha");
    const beta = db.storage<number>("beta");
    const admin = db.admin();
    const alphaIds = await alpha.pushAll([1, 2, 3, 4, 5].map((n) => new Task(n)));
    for (const id of alphaIds.slice(0, 4)) await admin.kill(id);
    const betaId = await beta.push(6);
    await admin.kill(betaId);

    assert.equal(await admin.retryAll({ queue: "alpha", status: "killed", batchSize: 3 }), 4);
    for (const id of alphaIds) {
      const record = await alpha.fetchById(id);
      assert.deepEqual([record?.status, record?.attempts], ["pending", 0]);
    }
    assert.equal((await beta.fetchById(betaId))?.status, "killed");
    assert.equal(await admin.retryAll({ queue: "alpha", status: "killed" }), 0);
    assert.equal(await admin.retryAll({ queue: "beta", status: "done" }), 0);
    assert.equal(await admin.retryAll({ queue: "beta", status: "killed" }), 1);
    assert.deepEqual(await admin.stats(), {
      pending: 6,
      queued: 0,
      running: 0,
      done: 0,
      failed: 0,
      killed: 0,
      total: 6,
    });
  },
);

backendTest(
  "Admin.delete() removes a task whatever its state; vacuum() removes finished tasks older than asked",
  async (db) => {
    const clock = new FakeClock();
    const storage = db.storage<string>("cleanup", { clock });
    const admin = db.admin({ clock });
    const oldKilled = await storage.push("old-killed");
    await admin.kill(oldKilled);
    const waiting = await storage.push("waiting", { runAfter: 86_400_000 });
    const oldDone = await storage.push("old-done");
    const worker = new WorkerBuilder("cleaner").backend(storage).handleSignals(false)
      .build((text) => text);
    await worker.runUntil(storage.waitFor(oldDone, { timeoutMs: 10_000 }));
    clock.advance(10_000);
    const newKilled = await storage.push("new-killed");
    await admin.kill(newKilled);
    const fresh = await storage.push("fresh", { runAfter: 86_400_000 });

    assert.equal(await admin.vacuum({ olderThanMs: 60_000 }), 0);
    assert.equal(await admin.vacuum({ olderThanMs: 5_000, batchSize: 1 }), 2);
    assert.equal(await storage.fetchById(oldKilled), undefined);
    assert.equal(await storage.fetchById(oldDone), undefined);
    assert.equal((await storage.fetchById(newKilled))?.status, "killed");
    assert.equal(await admin.vacuum(), 1);
    assert.deepEqual((await admin.listTasks()).map((t) => t.id).sort(), [waiting, fresh].sort());

    assert.equal(await admin.delete(waiting), true, "a pending task can be deleted");
    assert.equal(await admin.delete(waiting), false);
    assert.equal(await storage.fetchById(waiting), undefined);
    assert.deepEqual((await admin.listTasks()).map((t) => t.id), [fresh]);
  },
);

backendTest(
  "Admin.kill() of a task waiting for its retry, and delete() of a running one: no further attempt, the worker goes on",
  async (db) => {
    const storage = db.storage<string>("repairs-in-flight");
    const admin = db.admin();
    const waiting = await storage.push("waits", { maxAttempts: 3 });
    const deleted = await storage.push("deleted");
    const release = gate();
    const deletedStarted = gate();
    const calls = new Map<string, number>();
    const log = eventLog();
    const worker = new WorkerBuilder("in-flight")
      .backend(storage)
      .concurrency(2)
      .retry({ backoff: { initialMs: 3_600_000, jitter: 0 } })
      .handleSignals(false)
      .onEvent(log.listener)
      .build(async (name) => {
        calls.set(name, (calls.get(name) ?? 0) + 1);
        if (name === "waits") throw new Error("try again in an hour");
        if (name === "deleted") {
          deletedStarted.open();
          await release.promise;
        }
        return name;
      });
    await using running = start(worker);
    await deletedStarted.promise;
    await waitUntil(
      async () => (await storage.fetchById(waiting))?.status === "failed",
      "a failure",
    );
    const killed = await admin.kill(waiting, "not worth waiting for");
    assert.deepEqual([killed.status, killed.attempts], ["killed", 1]);
    assert.equal(await admin.delete(deleted), true);
    release.open();
    await waitUntil(() => worker.inFlight === 0, "the deleted task's handler to finish");
    const later = await storage.push("later");
    const [laterTask] = await storage.waitFor(later, { timeoutMs: 10_000 });
    await running.stop();

    assert.equal(laterTask?.status, "done", "the worker went on");
    assert.equal(await storage.fetchById(deleted), undefined, "the late outcome did not revive it");
    assert.deepEqual(Object.fromEntries(calls), { waits: 1, deleted: 1, later: 1 });
    assert.equal((await storage.fetchById(waiting))?.status, "killed");
    assert.deepEqual(await admin.stats("repairs-in-flight"), {
      pending: 0,
      queued: 0,
      running: 0,
      done: 1,
      failed: 0,
      killed: 1,
      total: 2,
    });
  },
);
