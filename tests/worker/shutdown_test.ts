import assert from "node:assert/strict";
import {
  Config,
  type Database,
  ShutdownError,
  SqliteStorage,
  Task,
  WorkerBuilder,
} from "../../mod.ts";
import { gate, tempDatabase, waitUntil } from "../_helpers.ts";

function countRunning(db: Database): number {
  return db.get<{ n: number }>("SELECT count(*) AS n FROM apalis_tasks WHERE status = 'running'")!
    .n;
}

Deno.test("Worker.stop() gives back the tasks it claimed ahead, attempt and all, and lets the running one finish", async () => {
  await using tmp = await tempDatabase();
  const config = new Config("shutdown").setBufferSize(10);
  const storage = new SqliteStorage<number>(tmp.db, config);
  // Quick tasks first: the worker learns its pace and claims ahead; task BLOCK then blocks.
  const BLOCK = 3000;
  const ids = await storage.pushAll(
    Array.from({ length: BLOCK + 50 }, (_, i) => Task.builder(i).build()),
  );
  const stopCalled = gate();
  const blocked = gate();
  const handled: number[] = [];
  const worker = new WorkerBuilder("graceful")
    .backend(storage)
    .concurrency(1)
    .handleSignals(false)
    .onEvent((_ctx, event) => {
      if (event.type === "stop") stopCalled.open();
    })
    .build(async (n) => {
      handled.push(n);
      if (n === BLOCK) {
        blocked.open();
        await stopCalled.promise; // blocks until stop() is called
      }
      return n * 10;
    });
  const running = worker.run();
  await blocked.promise;
  // One handler running, and the buffer topped up to bufferSize: `running` in the file, with
  // their attempt counted, but not started.
  await waitUntil(
    () => Promise.resolve(countRunning(tmp.db) === 11),
    "the worker to hold 10 tasks ahead",
    10_000,
  );
  const ahead = tmp.db.all<{ id: string; attempts: number }>(
    "SELECT id, attempts FROM apalis_tasks WHERE status = 'running' AND id <> ?",
    [ids[BLOCK]!],
  );
  assert.equal(ahead.length, 10);
  assert.ok(ahead.every((row) => row.attempts === 1), "an attempt is counted at the claim");
  await worker.stop();
  await running;

  assert.equal(handled.length, BLOCK + 1, "no task claimed ahead started after stop()");
  assert.deepEqual(handled, Array.from({ length: BLOCK + 1 }, (_, i) => i), "claim order");
  const blockedTask = await storage.fetchById(ids[BLOCK]!);
  assert.equal(blockedTask?.status, "done");
  assert.equal(blockedTask?.lastResult, BLOCK * 10);
  for (const id of ids.slice(BLOCK + 1)) {
    const task = await storage.fetchById(id);
    assert.equal(task?.status, "pending", `task ${id} was released`);
    assert.equal(task?.lockBy, null);
    assert.equal(task?.lockAt, null);
    assert.equal(task?.attempts, 0, `task ${id} got its attempt back`);
  }
  const [info] = await storage.listWorkers("shutdown");
  assert.equal(info?.name, "graceful");
  assert.notEqual(info?.stoppedAt, null);
  assert.equal(info?.alive, false);
  assert.equal(countRunning(tmp.db), 0);
});

Deno.test("WorkerBuilder.shutdownTimeout() records an unsettled handler as failed with ShutdownError and run() resolves", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "stubborn");
  const id = await storage.push("ignore the signal", { maxAttempts: 5 });
  const started = gate();
  const worker = new WorkerBuilder("stubborn-worker")
    .backend(storage)
    .shutdownTimeout(50)
    .retry({ backoff: { initialMs: 60_000, jitter: 0 } })
    .handleSignals(false)
    .build(() => {
      started.open();
      return new Promise(() => {}); // ignores ctx.signal and never settles
    });
  const running = worker.run();
  await started.promise;
  await worker.stop();
  await running; // resolves although the handler never settled

  const task = await storage.fetchById(id);
  assert.equal(task?.status, "failed");
  assert.equal(task?.attempts, 1);
  assert.equal(task?.lastError?.name, "ShutdownError");
  assert.equal(task?.runAt, task?.doneAt, "an interrupted attempt is due again at once");
  assert.equal(countRunning(tmp.db), 0);
});

Deno.test("WorkerBuilder.shutdownTimeout() kills an unsettled handler's task on its last attempt", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "stubborn-last");
  const id = await storage.push("ignore the signal", { maxAttempts: 1 });
  const started = gate();
  const worker = new WorkerBuilder("stubborn-last-worker")
    .backend(storage)
    .shutdownTimeout(50)
    .handleSignals(false)
    .build(() => {
      started.open();
      return new Promise(() => {});
    });
  const running = worker.run();
  await started.promise;
  await worker.stop();
  await running;

  const task = await storage.fetchById(id);
  assert.equal(task?.status, "killed");
  assert.equal(task?.attempts, 1);
  assert.equal(task?.lastError?.name, "ShutdownError");
  assert.equal(countRunning(tmp.db), 0);
});

Deno.test("Worker.stop() aborts ctx.signal with a ShutdownError after the shutdown timeout", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "honour");
  const id = await storage.push("honour the signal", { maxAttempts: 5 });
  const started = gate();
  let reason: unknown;
  const worker = new WorkerBuilder("honouring-worker")
    .backend(storage)
    .shutdownTimeout(20)
    .retry({ backoff: { initialMs: 60_000, jitter: 0 } })
    .handleSignals(false)
    .build(async (_args, ctx) => {
      started.open();
      await new Promise<void>((resolve) =>
        ctx.signal.addEventListener("abort", () => resolve(), { once: true })
      );
      reason = ctx.signal.reason;
      throw ctx.signal.reason;
    });
  const running = worker.run();
  await started.promise;
  await worker.stop();
  await running;

  assert.ok(reason instanceof ShutdownError, `signal.reason is ${String(reason)}`);
  assert.match(reason.message, /honouring-worker/);
  const task = await storage.fetchById(id);
  assert.equal(task?.status, "failed");
  assert.equal(task?.lastError?.name, "ShutdownError");
  assert.equal(countRunning(tmp.db), 0);
});

Deno.test("Worker.runUntil() stops the worker when the AbortSignal aborts", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "until-signal");
  const controller = new AbortController();
  let exited = false;
  const worker = new WorkerBuilder("until-signal-worker")
    .backend(storage)
    .handleSignals(false)
    .onEvent((_ctx, event) => {
      if (event.type === "exit") exited = true;
    })
    .build((n) => n + 1);
  const running = worker.runUntil(controller.signal);
  const id = await storage.push(1);
  const [task] = await storage.waitFor(id, { timeoutMs: 10_000 });
  assert.equal(task?.lastResult, 2);
  assert.equal(exited, false, "the worker keeps running until the signal aborts");
  controller.abort();
  await running;

  assert.equal(exited, true);
  const [info] = await storage.listWorkers("until-signal");
  assert.notEqual(info?.stoppedAt, null);
  assert.equal(info?.alive, false);
});

Deno.test("Worker.runUntil() stops the worker when the promise settles", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "until-promise");
  const until = gate();
  let exited = false;
  const worker = new WorkerBuilder("until-promise-worker")
    .backend(storage)
    .handleSignals(false)
    .onEvent((_ctx, event) => {
      if (event.type === "exit") exited = true;
    })
    .build((n) => n * 2);
  const running = worker.runUntil(until.promise);
  const id = await storage.push(21);
  const [task] = await storage.waitFor(id, { timeoutMs: 10_000 });
  assert.equal(task?.lastResult, 42);
  assert.equal(exited, false, "the worker keeps running until the promise settles");
  until.open();
  await running;

  assert.equal(exited, true);
  const [info] = await storage.listWorkers("until-promise");
  assert.notEqual(info?.stoppedAt, null);
});

Deno.test("Worker.runUntil() stops at once when the AbortSignal is already aborted", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "until-aborted");
  const worker = new WorkerBuilder("until-aborted-worker")
    .backend(storage)
    .handleSignals(false)
    .build((n) => n);
  await worker.runUntil(AbortSignal.abort());
  const [info] = await storage.listWorkers("until-aborted");
  assert.notEqual(info?.stoppedAt, null);
  assert.equal(info?.alive, false);
});

Deno.test("TaskContext.worker.stop() stops the worker after the calling handler finishes", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "self-stop");
  const ids = await storage.pushAll([1, 2, 3].map((n) => Task.builder(n).build()));
  const handled: number[] = [];
  let afterStop = "";
  const worker = new WorkerBuilder("self-stopper")
    .backend(storage)
    .concurrency(1)
    .handleSignals(false)
    .build(async (n, ctx) => {
      handled.push(n);
      ctx.worker.stop(); // returns at once: the handler goes on
      await new Promise((resolve) => setTimeout(resolve, 5));
      afterStop = `finished ${n}`;
      return n * 100;
    });
  await worker.run();

  assert.equal(handled.length, 1);
  assert.equal(afterStop, `finished ${handled[0]}`);
  const tasks = await Promise.all(ids.map((id) => storage.fetchById(id)));
  const first = tasks.find((t) => t?.args === handled[0]);
  assert.equal(first?.status, "done");
  assert.equal(first?.lastResult, handled[0]! * 100);
  const rest = tasks.filter((t) => t !== first);
  assert.deepEqual(rest.map((t) => [t?.status, t?.lockBy]), [["pending", null], [
    "pending",
    null,
  ]]);
  const [info] = await storage.listWorkers("self-stop");
  assert.notEqual(info?.stoppedAt, null);
  assert.equal(countRunning(tmp.db), 0);
});

Deno.test("Worker.stop() resolves at once for a worker that never ran", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "never-ran");
  const worker = new WorkerBuilder("never-ran").backend(storage).handleSignals(false).build((n) =>
    n
  );
  await worker.stop();
  assert.deepEqual(await storage.listWorkers(), [], "it never registered");
});
