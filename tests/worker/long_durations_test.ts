/**
 * Durations of 2^31 ms (about 24.9 days) or more overflow `setTimeout`/`setInterval`, which then
 * fire at once. A worker must handle every duration its API accepts: a task due in 30 days, a
 * 30-day attempt timeout, shutdown timeout or heartbeat period.
 *
 * @module
 */
import assert from "node:assert/strict";
import process from "node:process";
import {
  Config,
  IntervalStrategy,
  SqliteStorage,
  WorkerBuilder,
  type WorkerEvent,
} from "../../mod.ts";
import { countingTransactions, gate, tempDatabase, waitUntil } from "../_helpers.ts";

const DAY_MS = 86_400_000;
const MONTH_MS = 30 * DAY_MS;

/** Records process warnings (a TimeoutOverflowWarning is one) until disposed. */
function recordWarnings(): { seen: string[] } & Disposable {
  const seen: string[] = [];
  const listener = (warning: Error) => seen.push(`${warning.name}: ${warning.message}`);
  process.on("warning", listener);
  return { seen, [Symbol.dispose]: () => void process.off("warning", listener) };
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

Deno.test("Worker.run() sleeps while its only task is due in 30 days, and does not run it early", async () => {
  await using tmp = await tempDatabase();
  using warnings = recordWarnings();
  const { db, count } = countingTransactions(tmp.db);
  // Polls once an hour: the only other wake-up is the timer of the task that falls due.
  const config = new Config("monthly").withPollInterval(new IntervalStrategy(3_600_000));
  const storage = new SqliteStorage<string>(db, config);
  const id = await storage.push("report", { runAfter: MONTH_MS });
  let ran = 0;
  let idle = false;
  const worker = new WorkerBuilder("monthly-worker")
    .backend(storage)
    .handleSignals(false)
    .onEvent((_ctx, event) => {
      if (event.type === "idle") idle = true;
    })
    .build(() => void ran++);
  const running = worker.run();
  try {
    await waitUntil(() => idle, "the worker to go idle");
    const before = count();
    await pause(1000);
    const flushes = count() - before;
    assert.ok(flushes <= 2, `an idle worker wrote ${flushes} transactions in one second`);
  } finally {
    await worker.stop();
    await running;
  }
  assert.equal(ran, 0, "the task ran early");
  assert.equal((await storage.fetchById(id))?.status, "pending");
  assert.deepEqual(warnings.seen, []);
});

Deno.test("WorkerBuilder.timeout() of 30 days lets an attempt run to its end", async () => {
  await using tmp = await tempDatabase();
  using warnings = recordWarnings();
  const storage = new SqliteStorage<string>(tmp.db, "long-timeout");
  const id = await storage.push("x", { maxAttempts: 1 });
  let aborted = false;
  const worker = new WorkerBuilder("long-timeout-worker")
    .backend(storage)
    .timeout(MONTH_MS)
    .handleSignals(false)
    .build(async (_args, ctx) => {
      await pause(200);
      aborted = ctx.signal.aborted;
      return "finished";
    });
  const running = worker.run();
  const [task] = await storage.waitFor(id, { timeoutMs: 10_000 });
  await worker.stop();
  await running;
  assert.equal(task!.status, "done", JSON.stringify(task!.lastError));
  assert.equal(task!.lastResult, "finished");
  assert.equal(aborted, false, "the attempt's signal aborted");
  assert.deepEqual(warnings.seen, []);
});

Deno.test("WorkerBuilder.shutdownTimeout() of 30 days lets a running handler finish after stop()", async () => {
  await using tmp = await tempDatabase();
  using warnings = recordWarnings();
  const storage = new SqliteStorage<string>(tmp.db, "long-shutdown");
  const id = await storage.push("x", { maxAttempts: 3 });
  const started = gate();
  const release = gate();
  let aborted = false;
  const worker = new WorkerBuilder("long-shutdown-worker")
    .backend(storage)
    .shutdownTimeout(MONTH_MS)
    .handleSignals(false)
    .build(async (_args, ctx) => {
      started.open();
      await release.promise;
      aborted = ctx.signal.aborted;
      return "finished";
    });
  const running = worker.run();
  await started.promise;
  const stopped = worker.stop();
  await pause(300); // a grace timer that overflowed would have aborted the handler by now
  release.open();
  await stopped;
  await running;
  const task = await storage.fetchById(id);
  assert.equal(aborted, false, "the shutdown aborted the handler at once");
  assert.equal(task?.status, "done", JSON.stringify(task?.lastError));
  assert.equal(task?.attempts, 1);
  assert.deepEqual(warnings.seen, []);
});

Deno.test("Config.setKeepAlive() of 30 days heart-beats once at start, not continuously", async () => {
  await using tmp = await tempDatabase();
  using warnings = recordWarnings();
  const config = new Config("long-keepalive")
    .setKeepAlive(MONTH_MS)
    .setReenqueueOrphanedAfter(2 * MONTH_MS);
  const storage = new SqliteStorage<string>(tmp.db, config);
  const events: WorkerEvent[] = [];
  const worker = new WorkerBuilder("long-keepalive-worker")
    .backend(storage)
    .handleSignals(false)
    .onEvent((_ctx, event) => events.push(event))
    .build(() => {});
  const running = worker.run();
  try {
    await waitUntil(() => events.some((e) => e.type === "heartbeat"), "the first heartbeat");
    await pause(500);
  } finally {
    await worker.stop();
    await running;
  }
  const heartbeats = events.filter((e) => e.type === "heartbeat").length;
  assert.equal(heartbeats, 1, `${heartbeats} heartbeats in half a second`);
  assert.deepEqual(warnings.seen, []);
});
