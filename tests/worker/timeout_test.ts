import assert from "node:assert/strict";
import {
  type Database,
  SqliteStorage,
  type TaskRecord,
  TaskTimeoutError,
  WorkerBuilder,
  type WorkerEvent,
} from "../../mod.ts";
import { tempDatabase, waitUntil } from "../_helpers.ts";

type ErrorEvent = Extract<WorkerEvent, { type: "error" }>;

function countRunning(db: Database): number {
  return db.get<{ n: number }>("SELECT count(*) AS n FROM apalis_tasks WHERE status = 'running'")!
    .n;
}

Deno.test("WorkerBuilder.timeout() fails the attempt with TaskTimeoutError, aborts ctx.signal and retries", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "timeout");
  const id = await storage.push("slow", { maxAttempts: 3 });
  const errors: ErrorEvent[] = [];
  const snapshots: Promise<TaskRecord<string> | undefined>[] = [];
  let seen: { aborted: boolean; reason: unknown } | undefined;
  const worker = new WorkerBuilder("timeout-worker")
    .backend(storage)
    .timeout(50)
    .retry({ backoff: { initialMs: 10, factor: 2, jitter: 0 } })
    .handleSignals(false)
    .onEvent((_ctx, event) => {
      if (event.type === "error" && event.task) {
        errors.push(event);
        snapshots.push(storage.fetchById(event.task.taskId));
      }
    })
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
  const running = worker.run();
  const [task] = await storage.waitFor(id, { timeoutMs: 10_000 });
  await worker.stop();
  await running;

  assert.ok(seen, "the first attempt's handler saw its signal abort");
  assert.equal(seen.aborted, true);
  assert.ok(seen.reason instanceof TaskTimeoutError);
  assert.match((seen.reason as Error).message, /50 ms/);
  assert.equal(errors.length, 1);
  assert.equal(errors[0]!.status, "failed");
  assert.equal(errors[0]!.task?.attempt, 1);
  assert.ok(errors[0]!.error instanceof TaskTimeoutError);
  const [failed] = await Promise.all(snapshots);
  assert.equal(failed?.status, "failed");
  assert.equal(failed?.attempts, 1);
  assert.equal(failed?.lastError?.name, "TaskTimeoutError");
  assert.equal(failed!.runAt - failed!.doneAt!, 10);
  assert.equal(task?.status, "done");
  assert.equal(task?.attempts, 2);
  assert.equal(task?.lastResult, "done on attempt 2");
  assert.equal(countRunning(tmp.db), 0);
});

Deno.test("WorkerBuilder.timeout() frees the slot and never leaves the row running when the handler never settles", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "never");
  // Highest priority: with concurrency 1 it takes the only slot first.
  const stuck = await storage.push("stuck", { maxAttempts: 2, priority: 10 });
  const others = await Promise.all(["a", "b", "c"].map((name) => storage.push(name)));
  let stuckCalls = 0;
  const order: string[] = [];
  const worker = new WorkerBuilder("never-settles")
    .backend(storage)
    .concurrency(1)
    .timeout(30)
    .retry({ backoff: { initialMs: 10, factor: 1, jitter: 0 } })
    .handleSignals(false)
    .build((args) => {
      order.push(args);
      if (args === "stuck") {
        stuckCalls++;
        return new Promise(() => {});
      }
      return args.toUpperCase();
    });
  const running = worker.run();
  const [stuckTask] = await storage.waitFor(stuck, { timeoutMs: 10_000 });
  const done = await storage.waitFor(others, { timeoutMs: 10_000 });
  assert.equal(worker.inFlight, 0);
  await worker.stop();
  await running;

  assert.equal(order[0], "stuck", "the never-settling task held the only slot first");
  assert.equal(stuckCalls, 2);
  assert.equal(stuckTask?.status, "killed");
  assert.equal(stuckTask?.attempts, 2);
  assert.equal(stuckTask?.lastError?.name, "TaskTimeoutError");
  assert.deepEqual(done.map((t) => [t.status, t.lastResult]), [
    ["done", "A"],
    ["done", "B"],
    ["done", "C"],
  ]);
  assert.equal(countRunning(tmp.db), 0);
});

Deno.test("WorkerBuilder.timeout() records failed (not running) after the first timeout of a never-settling handler", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "never-failed");
  const id = await storage.push("stuck", { maxAttempts: 5 });
  const statuses: string[] = [];
  const worker = new WorkerBuilder("never-failed-worker")
    .backend(storage)
    .timeout(20)
    // A long backoff: the task stays failed until the worker stops.
    .retry({ backoff: { initialMs: 60_000, jitter: 0 } })
    .handleSignals(false)
    .onEvent((_ctx, event) => {
      if (event.type === "error" && event.status) statuses.push(event.status);
    })
    .build(() => new Promise(() => {}));
  const running = worker.run();
  await waitUntil(() => statuses.length === 1, "the first attempt to time out");
  await worker.stop();
  await running;

  const task = await storage.fetchById(id);
  assert.equal(task?.status, "failed");
  assert.equal(task?.attempts, 1);
  assert.equal(task?.lastError?.name, "TaskTimeoutError");
  assert.equal(task!.runAt - task!.doneAt!, 60_000);
  assert.equal(countRunning(tmp.db), 0);
});
