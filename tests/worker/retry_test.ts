import assert from "node:assert/strict";
import {
  AbortError,
  type Database,
  SqliteStorage,
  Task,
  type TaskRecord,
  WorkerBuilder,
  type WorkerEvent,
} from "../../mod.ts";
import { tempDatabase } from "../_helpers.ts";

type ErrorEvent = Extract<WorkerEvent, { type: "error" }>;

/** Task error events, each with the task as stored right after the event's commit. */
interface Observed {
  events: ErrorEvent[];
  snapshots: Promise<TaskRecord | undefined>[];
}

/** A listener recording task errors; `fetchById` reads synchronously, so the snapshot is exact. */
function observeErrors(storage: { fetchById(id: string): Promise<TaskRecord | undefined> }): {
  observed: Observed;
  listener: (ctx: unknown, event: WorkerEvent) => void;
} {
  const observed: Observed = { events: [], snapshots: [] };
  return {
    observed,
    listener: (_ctx, event) => {
      if (event.type === "error" && event.task) {
        observed.events.push(event);
        observed.snapshots.push(storage.fetchById(event.task.taskId));
      }
    },
  };
}

function countRunning(db: Database): number {
  return db.get<{ n: number }>("SELECT count(*) AS n FROM apalis_tasks WHERE status = 'running'")!
    .n;
}

async function stopped(worker: { stop(): Promise<void> }, running: Promise<void>): Promise<void> {
  await worker.stop();
  await running;
}

Deno.test("Worker.run() persists each retry's backoff and kills the task after maxAttempts when the handler always throws", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<{ n: number }>(tmp.db, "retry");
  const id = await storage.push({ n: 1 }, { maxAttempts: 3 });
  const { observed, listener } = observeErrors(storage);
  const attempts: number[] = [];
  const startedAt: number[] = [];
  const worker = new WorkerBuilder("retrier")
    .backend(storage)
    .retry({ backoff: { initialMs: 20, factor: 2, jitter: 0 } })
    .handleSignals(false)
    .onEvent(listener)
    .build((_args, ctx) => {
      attempts.push(ctx.attempt);
      startedAt.push(Date.now());
      throw new Error(`boom on attempt ${ctx.attempt}`);
    });
  const running = worker.run();
  const [task] = await storage.waitFor(id, { timeoutMs: 10_000 });
  await stopped(worker, running);

  assert.deepEqual(attempts, [1, 2, 3]);
  assert.deepEqual(observed.events.map((e) => e.status), ["failed", "failed", "killed"]);
  assert.deepEqual(observed.events.map((e) => e.task?.attempt), [1, 2, 3]);
  const snapshots = await Promise.all(observed.snapshots);
  const expectedDelays = [20, 40];
  for (const [i, delay] of expectedDelays.entries()) {
    const snap = snapshots[i]!;
    const event = observed.events[i]!;
    assert.equal(snap.status, "failed");
    assert.equal(snap.attempts, i + 1);
    assert.notEqual(snap.doneAt, null);
    assert.equal(snap.runAt - snap.doneAt!, delay, `attempt ${i + 1}: run_at = done_at + ${delay}`);
    assert.equal(event.retryAt, snap.runAt, "the event's retryAt is the stored run_at");
    assert.equal(snap.lastError?.name, "Error");
    assert.equal(snap.lastError?.message, `boom on attempt ${i + 1}`);
    // The retry waited for its due time: it was not instant.
    assert.ok(
      startedAt[i + 1]! >= snap.runAt,
      `attempt ${i + 2} started at ${startedAt[i + 1]}, before its run_at ${snap.runAt}`,
    );
  }
  assert.equal(observed.events[2]!.retryAt, undefined);

  assert.ok(task);
  assert.equal(task.status, "killed");
  assert.equal(task.attempts, 3);
  assert.equal(task.maxAttempts, 3);
  assert.equal(task.lastError?.name, "Error");
  assert.equal(task.lastError?.message, "boom on attempt 3");
  assert.match(task.lastError?.stack ?? "", /boom on attempt 3/);
  assert.notEqual(task.doneAt, null);
  assert.equal(countRunning(tmp.db), 0);
});

Deno.test("Worker.run() uses a task's own backoff (builder or push option) over the worker's", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "override");
  const built = await storage.pushTask(
    Task.builder("built").backoff({ initialMs: 15, factor: 3, jitter: 0 }).maxAttempts(3).build(),
  );
  const pushed = await storage.push("pushed", {
    maxAttempts: 2,
    backoff: { initialMs: 25, factor: 1, jitter: 0 },
  });
  const plain = await storage.push("plain", { maxAttempts: 2 });
  const { observed, listener } = observeErrors(storage);
  const worker = new WorkerBuilder("overrider")
    .backend(storage)
    .concurrency(3)
    .retry({ backoff: { initialMs: 60_000, factor: 2, jitter: 0 } })
    .handleSignals(false)
    .onEvent(listener)
    .build((args) => {
      throw new Error(`fail ${args}`);
    });
  const running = worker.run();
  const [builtTask, pushedTask] = await storage.waitFor([built, pushed], { timeoutMs: 10_000 });
  await stopped(worker, running);

  const snapshots = await Promise.all(observed.snapshots);
  const delays = (id: string) =>
    snapshots
      .filter((s) => s?.id === id && s.status === "failed")
      .map((s) => s!.runAt - s!.doneAt!);
  assert.deepEqual(delays(built), [15, 45]);
  assert.deepEqual(delays(pushed), [25]);
  assert.deepEqual(delays(plain), [60_000], "without its own backoff a task uses the worker's");
  assert.equal(builtTask?.status, "killed");
  assert.equal(builtTask?.attempts, 3);
  assert.equal(pushedTask?.status, "killed");
  assert.equal(pushedTask?.attempts, 2);
  const plainTask = await storage.fetchById(plain);
  assert.equal(plainTask?.status, "failed");
  assert.equal(plainTask?.attempts, 1);
  assert.equal(countRunning(tmp.db), 0);
});

Deno.test("Worker.run() ends a task done with attempts 3 when the handler fails twice then succeeds", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "flaky");
  const id = await storage.push("x");
  const { observed, listener } = observeErrors(storage);
  const worker = new WorkerBuilder("flaky-worker")
    .backend(storage)
    .retry({ backoff: { initialMs: 10, factor: 2, jitter: 0 } })
    .handleSignals(false)
    .onEvent(listener)
    .build((args, ctx) => {
      if (ctx.attempt < 3) throw new TypeError(`not yet ${ctx.attempt}`);
      return { args, attempt: ctx.attempt };
    });
  const running = worker.run();
  const [task] = await storage.waitFor(id, { timeoutMs: 10_000 });
  await stopped(worker, running);

  assert.deepEqual(observed.events.map((e) => e.status), ["failed", "failed"]);
  assert.equal(task?.status, "done");
  assert.equal(task?.attempts, 3);
  assert.deepEqual(task?.lastResult, { args: "x", attempt: 3 });
  assert.equal(countRunning(tmp.db), 0);
});

Deno.test("Worker.run() kills a task at once when the handler throws an AbortError", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "abort");
  const id = await storage.push("x", { maxAttempts: 5 });
  const { observed, listener } = observeErrors(storage);
  let calls = 0;
  const worker = new WorkerBuilder("aborter")
    .backend(storage)
    .retry({ backoff: { initialMs: 10, jitter: 0 } })
    .handleSignals(false)
    .onEvent(listener)
    .build(() => {
      calls++;
      throw new AbortError("retrying cannot help");
    });
  const running = worker.run();
  const [task] = await storage.waitFor(id, { timeoutMs: 10_000 });
  await stopped(worker, running);

  assert.equal(calls, 1);
  assert.equal(task?.status, "killed");
  assert.equal(task?.attempts, 1);
  assert.equal(task?.lastError?.name, "AbortError");
  assert.equal(task?.lastError?.message, "retrying cannot help");
  assert.equal(observed.events.length, 1);
  assert.equal(observed.events[0]!.status, "killed");
  assert.equal(observed.events[0]!.retryAt, undefined);
  assert.ok(observed.events[0]!.error instanceof AbortError);
  assert.equal(countRunning(tmp.db), 0);
});

Deno.test("Worker.run() records a thrown non-Error (string or object) as a NonError failure", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "non-error");
  const str = await storage.push("string", { maxAttempts: 2 });
  const obj = await storage.push("object", { maxAttempts: 2 });
  const { observed, listener } = observeErrors(storage);
  const worker = new WorkerBuilder("non-error-worker")
    .backend(storage)
    .concurrency(2)
    .retry({ backoff: { initialMs: 10, jitter: 0 } })
    .handleSignals(false)
    .onEvent(listener)
    .build((args, ctx) => {
      if (ctx.attempt === 1) {
        if (args === "string") throw "plain string thrown";
        throw { code: 42, reason: "object thrown" };
      }
      return "recovered";
    });
  const running = worker.run();
  const tasks = await storage.waitFor([str, obj], { timeoutMs: 10_000 });
  await stopped(worker, running);

  const snapshots = await Promise.all(observed.snapshots);
  const strFail = snapshots.find((s) => s?.id === str);
  const objFail = snapshots.find((s) => s?.id === obj);
  assert.equal(strFail?.status, "failed");
  assert.deepEqual(strFail?.lastError, { name: "NonError", message: "plain string thrown" });
  assert.equal(objFail?.status, "failed");
  assert.equal(objFail?.lastError?.name, "NonError");
  assert.match(objFail?.lastError?.message ?? "", /"code":42/);
  assert.match(objFail?.lastError?.message ?? "", /object thrown/);
  assert.equal(observed.events.find((e) => e.task?.taskId === str)?.error, "plain string thrown");
  for (const task of tasks) {
    assert.equal(task.status, "done");
    assert.equal(task.attempts, 2);
    assert.equal(task.lastResult, "recovered");
  }
  assert.equal(countRunning(tmp.db), 0);
});

Deno.test("Worker.run() treats a rejected promise like a throw", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "reject");
  const id = await storage.push("x", { maxAttempts: 2 });
  const { observed, listener } = observeErrors(storage);
  const worker = new WorkerBuilder("rejecter")
    .backend(storage)
    .retry({ backoff: { initialMs: 30, jitter: 0 } })
    .handleSignals(false)
    .onEvent(listener)
    .build((_args, ctx) => Promise.reject(new RangeError(`rejected ${ctx.attempt}`)));
  const running = worker.run();
  const [task] = await storage.waitFor(id, { timeoutMs: 10_000 });
  await stopped(worker, running);

  const [first] = await Promise.all(observed.snapshots);
  assert.equal(first?.status, "failed");
  assert.equal(first!.runAt - first!.doneAt!, 30);
  assert.equal(first?.lastError?.name, "RangeError");
  assert.equal(first?.lastError?.message, "rejected 1");
  assert.equal(task?.status, "killed");
  assert.equal(task?.attempts, 2);
  assert.equal(task?.lastError?.name, "RangeError");
  assert.equal(task?.lastError?.message, "rejected 2");
  assert.match(task?.lastError?.stack ?? "", /rejected 2/);
  assert.equal(countRunning(tmp.db), 0);
});

Deno.test("WorkerBuilder.retry() accepts a backoff function of the attempt and error", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "fn-backoff");
  const id = await storage.push("x", { maxAttempts: 3 });
  const { observed, listener } = observeErrors(storage);
  const calls: [number, unknown][] = [];
  const worker = new WorkerBuilder("fn-backoff-worker")
    .backend(storage)
    .retry({
      backoff: (attempt, error) => {
        calls.push([attempt, error]);
        return 10 * attempt;
      },
    })
    .handleSignals(false)
    .onEvent(listener)
    .build((_args, ctx) => {
      throw new Error(`attempt ${ctx.attempt}`);
    });
  const running = worker.run();
  const [task] = await storage.waitFor(id, { timeoutMs: 10_000 });
  await stopped(worker, running);

  assert.deepEqual(calls.map(([attempt]) => attempt), [1, 2]);
  assert.deepEqual(calls.map(([, error]) => (error as Error).message), ["attempt 1", "attempt 2"]);
  const snapshots = await Promise.all(observed.snapshots);
  assert.deepEqual(
    snapshots.filter((s) => s?.status === "failed").map((s) => s!.runAt - s!.doneAt!),
    [10, 20],
  );
  assert.deepEqual(
    observed.events.filter((e) => e.status === "failed").map((e) => e.retryAt),
    snapshots.filter((s) => s?.status === "failed").map((s) => s!.runAt),
  );
  assert.equal(task?.status, "killed");
  assert.equal(task?.attempts, 3);
  assert.equal(countRunning(tmp.db), 0);
});

Deno.test("WorkerBuilder.maxAttempts() kills a task once the lower of its own and the worker's cap is used", async () => {
  await using temp = await tempDatabase();
  const storage = new SqliteStorage<string>(temp.db, "capped");
  const capped = await storage.push("capped by the worker", { maxAttempts: 10 });
  const own = await storage.push("capped by itself", { maxAttempts: 1 });
  const calls = new Map<string, number>();
  const worker = new WorkerBuilder("cap")
    .backend(storage)
    .maxAttempts(2)
    .retry({ backoff: { initialMs: 5, jitter: 0 } })
    .handleSignals(false)
    .build((name) => {
      calls.set(name, (calls.get(name) ?? 0) + 1);
      throw new Error(`${name} fails`);
    });
  await worker.runUntil(storage.waitFor([capped, own], { timeoutMs: 10_000 }));
  const [cappedTask, ownTask] = await storage.waitFor([capped, own]);
  assert.equal(cappedTask?.status, "killed");
  assert.equal(cappedTask?.attempts, 2, "the worker's cap (2) wins over the task's 10");
  assert.equal(ownTask?.status, "killed");
  assert.equal(ownTask?.attempts, 1, "the task's own 1 wins over the worker's 2");
  assert.deepEqual(Object.fromEntries(calls), {
    "capped by the worker": 2,
    "capped by itself": 1,
  });
});
