/**
 * Conformance: what a failed attempt does. The retry's due time is stored (a worker restarted on
 * another connection does not run it early), an `AbortError` kills at once, attempts run out,
 * and a timeout fails the attempt and aborts its signal.
 *
 * @module
 */
import assert from "node:assert/strict";
import { AbortError, Config, Task, TaskTimeoutError, WorkerBuilder } from "../../mod.ts";
import {
  afterReads,
  assertNoneHeld,
  backendTest,
  CountingClock,
  eventLog,
  start,
  taskErrors,
  waitUntil,
} from "./_suite.ts";

backendTest(
  "Worker stores each retry's due time, and a worker restarted on another connection does not run it early",
  async (db) => {
    const clock = new CountingClock();
    const config = new Config("backoff").withPollInterval(5);
    const backoff = { initialMs: 1_000, factor: 2, jitter: 0 };
    const first = db.storage<string>(config, { clock });
    const id = await first.push("flaky", { maxAttempts: 3 });
    const attempts: number[] = [];
    const handler = (_args: string, ctx: { attempt: number }) => {
      attempts.push(ctx.attempt);
      if (ctx.attempt < 3) throw new Error(`boom on attempt ${ctx.attempt}`);
      return `ok on attempt ${ctx.attempt}`;
    };
    const log1 = eventLog();
    const worker1 = new WorkerBuilder("backoff-worker").backend(first).retry({ backoff })
      .handleSignals(false).onEvent(log1.listener).build(handler);
    await worker1.runUntil(
      waitUntil(async () => (await first.fetchById(id))?.status === "failed", "attempt 1 to fail"),
    );
    const failed1 = await first.fetchById(id);
    assert.equal(failed1?.attempts, 1);
    assert.equal(failed1?.doneAt, clock.now());
    assert.equal(failed1?.runAt, clock.now() + 1_000, "due 1 s (backoff) after the failure");
    assert.equal(failed1?.lastError?.message, "boom on attempt 1");
    assert.equal(failed1?.lockBy, "backoff-worker");
    assert.deepEqual(taskErrors(log1.events).map((e) => [e.status, e.retryAt]), [
      ["failed", failed1?.runAt],
    ]);

    // The same worker name on a new connection, as a restarted process would be.
    const other = await db.connect();
    const second = other.storage<string>(config, { clock });
    const log2 = eventLog();
    const worker2 = new WorkerBuilder("backoff-worker").backend(second).retry({ backoff })
      .handleSignals(false).onEvent(log2.listener).build(handler);
    await using running = start(worker2);
    await afterReads(clock);
    clock.advance(999);
    await afterReads(clock);
    assert.deepEqual(attempts, [1], "no attempt before the stored due time");
    assert.equal((await second.fetchById(id))?.status, "failed");

    clock.advance(1);
    await waitUntil(async () => (await second.fetchById(id))?.attempts === 2, "attempt 2");
    await waitUntil(
      async () => (await second.fetchById(id))?.status === "failed",
      "attempt 2 to fail",
    );
    const failed2 = await second.fetchById(id);
    assert.equal(failed2?.runAt, clock.now() + 2_000, "the backoff doubled");
    clock.advance(1_999);
    await afterReads(clock);
    assert.deepEqual(attempts, [1, 2]);

    clock.advance(1);
    const [task] = await second.waitFor(id, { timeoutMs: 10_000 });
    await running.stop();
    assert.deepEqual(attempts, [1, 2, 3]);
    assert.equal(task?.status, "done");
    assert.equal(task?.attempts, 3);
    assert.equal(task?.lastResult, "ok on attempt 3");
    assert.deepEqual(taskErrors(log2.events).map((e) => [e.status, e.retryAt]), [
      ["failed", failed2?.runAt],
    ]);
    await assertNoneHeld(db.admin());
  },
);

backendTest(
  "Worker kills a task at once when the handler throws an AbortError, and after maxAttempts otherwise",
  async (db) => {
    const storage = db.storage<string>("aborts");
    const aborted = await storage.push("abort", { maxAttempts: 5 });
    const exhausted = await storage.push("fail", { maxAttempts: 3 });
    const calls = new Map<string, number[]>();
    const log = eventLog();
    const worker = new WorkerBuilder("aborter")
      .backend(storage)
      .retry({ backoff: () => 0 })
      .handleSignals(false)
      .onEvent(log.listener)
      .build((name, ctx) => {
        calls.set(name, [...calls.get(name) ?? [], ctx.attempt]);
        if (name === "abort") throw new AbortError("retrying cannot help");
        throw new RangeError(`attempt ${ctx.attempt} failed`);
      });
    await worker.runUntil(storage.waitFor([aborted, exhausted], { timeoutMs: 10_000 }));
    const [abortedTask, exhaustedTask] = await storage.waitFor([aborted, exhausted]);

    assert.deepEqual(calls.get("abort"), [1]);
    assert.equal(abortedTask?.status, "killed");
    assert.equal(abortedTask?.attempts, 1);
    assert.deepEqual(
      [abortedTask?.lastError?.name, abortedTask?.lastError?.message],
      ["AbortError", "retrying cannot help"],
    );
    assert.deepEqual(calls.get("fail"), [1, 2, 3]);
    assert.equal(exhaustedTask?.status, "killed");
    assert.equal(exhaustedTask?.attempts, 3);
    assert.deepEqual(
      [exhaustedTask?.lastError?.name, exhaustedTask?.lastError?.message],
      ["RangeError", "attempt 3 failed"],
    );
    const errors = taskErrors(log.events);
    assert.deepEqual(
      errors.filter((e) => e.task?.taskId === aborted).map((e) => [e.status, e.retryAt]),
      [["killed", undefined]],
    );
    assert.deepEqual(
      errors.filter((e) => e.task?.taskId === exhausted).map((e) => e.status),
      ["failed", "failed", "killed"],
    );
    const counts = await storage.stats("aborts");
    assert.deepEqual([counts.killed, counts.total], [2, 2]);
  },
);

backendTest(
  "WorkerBuilder.timeout() fails the attempt with TaskTimeoutError, aborts ctx.signal, and the retry runs",
  async (db) => {
    const storage = db.storage<string>("timeouts");
    const id = await storage.push("slow", { maxAttempts: 3 });
    let seen: { aborted: boolean; reason: unknown } | undefined;
    const log = eventLog();
    const worker = new WorkerBuilder("timer")
      .backend(storage)
      .timeout(50)
      .retry({ backoff: { initialMs: 10, factor: 1, jitter: 0 } })
      .handleSignals(false)
      .onEvent(log.listener)
      .build(async (_args, ctx) => {
        if (ctx.attempt === 1) {
          await new Promise<void>((resolve) =>
            ctx.signal.addEventListener("abort", () => resolve(), { once: true })
          );
          seen = { aborted: ctx.signal.aborted, reason: ctx.signal.reason };
          return "too late: this result must be discarded";
        }
        return `done on attempt ${ctx.attempt}`;
      });
    await worker.runUntil(storage.waitFor(id, { timeoutMs: 10_000 }));
    const [task] = await storage.waitFor(id);

    assert.ok(seen, "the first attempt's handler saw its signal abort");
    assert.equal(seen.aborted, true);
    assert.ok(seen.reason instanceof TaskTimeoutError);
    const errors = taskErrors(log.events);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.status, "failed");
    assert.equal(errors[0]!.task?.attempt, 1);
    assert.ok(errors[0]!.error instanceof TaskTimeoutError);
    assert.equal(task?.status, "done");
    assert.equal(task?.attempts, 2);
    assert.equal(task?.lastResult, "done on attempt 2");
    await assertNoneHeld(storage, "timeouts");
  },
);

backendTest(
  "WorkerBuilder.timeout() frees the slot of a handler that never settles, and kills it after maxAttempts",
  async (db) => {
    const storage = db.storage<string>("stuck");
    // Highest priority: with concurrency 1 it takes the only slot first.
    const stuck = await storage.push("stuck", { maxAttempts: 2, priority: 10 });
    const others = await storage.pushAll(["a", "b", "c"].map((name) => new Task(name)));
    const order: string[] = [];
    const worker = new WorkerBuilder("never-settles")
      .backend(storage)
      .concurrency(1)
      .timeout(30)
      .retry({ backoff: () => 0 })
      .handleSignals(false)
      .build((name) => {
        order.push(name);
        return name === "stuck" ? new Promise(() => {}) : name.toUpperCase();
      });
    await worker.runUntil(storage.waitFor([stuck, ...others], { timeoutMs: 10_000 }));
    const [stuckTask, ...done] = await storage.waitFor([stuck, ...others]);

    assert.equal(order[0], "stuck", "the never-settling task held the only slot first");
    assert.equal(order.filter((name) => name === "stuck").length, 2);
    assert.equal(stuckTask?.status, "killed");
    assert.equal(stuckTask?.attempts, 2);
    assert.equal(stuckTask?.lastError?.name, "TaskTimeoutError");
    assert.deepEqual(done.map((t) => [t.status, t.lastResult]), [
      ["done", "A"],
      ["done", "B"],
      ["done", "C"],
    ]);
    await assertNoneHeld(storage, "stuck");
  },
);
