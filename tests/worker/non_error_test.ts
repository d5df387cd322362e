/**
 * A handler (or a middleware) that throws or rejects with no value — `undefined` or `null` — has
 * failed: the attempt is recorded as a `NonError` naming what was thrown, retried with backoff,
 * and the task ends `killed`, never `done`, with no `success` event.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type Handler,
  type Middleware,
  SqliteStorage,
  type TaskRecord,
  WorkerBuilder,
  type WorkerEvent,
} from "../../mod.ts";
import { tempDatabase } from "../_helpers.ts";

interface Outcome {
  task: TaskRecord<string>;
  events: WorkerEvent[];
  attempts: number[];
  /** The task as stored right after each error event (retry time and state). */
  snapshots: (TaskRecord<string> | undefined)[];
}

/** Runs one task of 3 attempts through `handler` (and `middleware`) until it has finished. */
async function runOne(
  handler: Handler<string>,
  middleware: Middleware<string>[] = [],
): Promise<Outcome> {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "no-value");
  const id = await storage.push("x", { maxAttempts: 3 });
  const events: WorkerEvent[] = [];
  const snapshots: Promise<TaskRecord<string> | undefined>[] = [];
  const attempts: number[] = [];
  const builder = new WorkerBuilder("no-value-worker")
    .backend(storage)
    .retry({ backoff: { initialMs: 20, factor: 2, jitter: 0 } })
    .handleSignals(false)
    .onEvent((_ctx, event) => {
      events.push(event);
      if (event.type === "error" && event.task) snapshots.push(storage.fetchById(id));
    });
  const counted: Handler<string> = (args, ctx) => {
    attempts.push(ctx.attempt);
    return handler(args, ctx);
  };
  if (middleware.length > 0) {
    // The outermost layer counts attempts, whichever layer throws.
    builder.layer((args, ctx, next) => {
      attempts.push(ctx.attempt);
      return next(args);
    });
    for (const layer of middleware) builder.layer(layer);
  }
  const worker = builder.build(middleware.length > 0 ? handler : counted);
  const running = worker.run();
  const [task] = await storage.waitFor(id, { timeoutMs: 10_000 });
  await worker.stop();
  await running;
  return { task: task!, events, attempts, snapshots: await Promise.all(snapshots) };
}

/** The task was failed twice with backoff, then killed, with `message` as its NonError. */
function assertKilledAsNonError(outcome: Outcome, message: RegExp): void {
  const { task, events, attempts, snapshots } = outcome;
  assert.equal(task.status, "killed", "a handler that threw no value must not be done");
  assert.deepEqual(attempts, [1, 2, 3], "each failure is retried until the attempts run out");
  assert.equal(task.lastResult, undefined);
  assert.equal(task.lastError?.name, "NonError");
  assert.match(task.lastError?.message ?? "", message);
  assert.equal(events.filter((e) => e.type === "success").length, 0, "no success event");
  const errors = events.filter((e) => e.type === "error" && e.task) as Extract<
    WorkerEvent,
    { type: "error" }
  >[];
  assert.deepEqual(errors.map((e) => e.status), ["failed", "failed", "killed"]);
  for (const event of errors) {
    assert.ok(event.error instanceof Error, "listeners get an Error, not undefined");
    assert.equal((event.error as Error).name, "NonError");
    assert.match((event.error as Error).message, message);
  }
  // The retries waited their persisted backoff: 20 ms, then 40 ms.
  assert.deepEqual(snapshots.slice(0, 2).map((s) => s!.runAt - s!.doneAt!), [20, 40]);
}

Deno.test("Worker.run() kills the task after its retries when the handler returns Promise.reject() with no value", async () => {
  const outcome = await runOne(() => Promise.reject());
  assertKilledAsNonError(outcome, /^The handler rejected with undefined/);
});

Deno.test("Worker.run() kills the task after its retries when the handler throws undefined", async () => {
  const outcome = await runOne(() => {
    throw undefined;
  });
  assertKilledAsNonError(outcome, /^The handler threw undefined/);
});

Deno.test("Worker.run() kills the task after its retries when an async handler rejects with null", async () => {
  const outcome = await runOne(() => new Promise((_resolve, reject) => reject(null)));
  assertKilledAsNonError(outcome, /^The handler rejected with null/);
});

Deno.test("Worker.run() kills the task after its retries when a middleware throws undefined", async () => {
  const outcome = await runOne(() => "never reached", [
    () => {
      throw undefined;
    },
  ]);
  assertKilledAsNonError(outcome, /undefined/);
});

Deno.test("Worker.run() kills the task after its retries when the handler behind a middleware rejects with undefined", async () => {
  const outcome = await runOne(() => Promise.reject(undefined), [
    async (args, _ctx, next) => await next(args),
  ]);
  assertKilledAsNonError(outcome, /undefined/);
});
