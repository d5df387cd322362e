/**
 * Durations given to the storage: poll strategies wait as long as they are told (2^31 ms and more
 * overflowed the timer and fired at once), and `waitFor` / `waitForRun` refuse durations that are
 * not numbers (NaN slipped through and polled forever without a deadline).
 *
 * @module
 */
import assert from "node:assert/strict";
import process from "node:process";
import {
  BackoffStrategy,
  Config,
  IntervalStrategy,
  type PollStrategy,
  SqliteStorage,
  StrategyBuilder,
  WaitTimeoutError,
  WorkerBuilder,
} from "../../mod.ts";
import { countingTransactions, tempDatabase, waitUntil } from "../_helpers.ts";

const MONTH_MS = 30 * 86_400_000;

/** Whether one wait of a fresh ticker of `strategy` is still pending after `ms`. */
async function stillWaitingAfter(strategy: PollStrategy, ms: number): Promise<boolean> {
  const controller = new AbortController();
  let done = false;
  const waiting = strategy.ticker().wait(false, controller.signal).then(() => done = true);
  await new Promise((resolve) => setTimeout(resolve, ms));
  const pending = !done;
  controller.abort();
  await waiting; // an abort ends the wait
  return pending;
}

Deno.test("Poll strategies wait for 30 days (no TimeoutOverflowWarning) when told to, and stop waiting when aborted", async () => {
  const warnings: string[] = [];
  const listener = (warning: Error) => warnings.push(warning.name);
  process.on("warning", listener);
  try {
    const strategies: [string, PollStrategy][] = [
      ["IntervalStrategy", new IntervalStrategy(MONTH_MS)],
      ["BackoffStrategy", new BackoffStrategy({ initialMs: MONTH_MS, maxMs: 2 * MONTH_MS })],
      ["MultiStrategy", new StrategyBuilder().apply(new IntervalStrategy(MONTH_MS)).build()],
    ];
    for (const [name, strategy] of strategies) {
      assert.ok(await stillWaitingAfter(strategy, 150), `${name} woke at once`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  } finally {
    process.off("warning", listener);
  }
  assert.deepEqual(warnings, []);
});

Deno.test("Worker.run() with a 30-day poll interval stays asleep while the queue is empty", async () => {
  await using tmp = await tempDatabase();
  const { db: counted, count: transactions } = countingTransactions(tmp.db);
  const config = new Config("monthly-poll").withPollInterval(MONTH_MS);
  const storage = new SqliteStorage<string>(counted, config);
  let idle = false;
  const worker = new WorkerBuilder("monthly-poller")
    .backend(storage)
    .handleSignals(false)
    .onEvent((_ctx, event) => {
      if (event.type === "idle") idle = true;
    })
    .build(() => {});
  const running = worker.run();
  try {
    await waitUntil(() => idle, "the worker to go idle");
    const before = transactions();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const flushes = transactions() - before;
    assert.ok(flushes <= 2, `an idle worker wrote ${flushes} transactions in one second`);
  } finally {
    await worker.stop();
    await running;
  }
});

Deno.test("SqliteStorage.waitFor() and waitForRun() throw a RangeError naming the option when a duration is not a number >= 0", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "waits");
  const id = await storage.push(1);
  const runId = await storage.pushStart(1);
  const bad: [option: string, options: Record<string, unknown>][] = [
    ["timeoutMs", { timeoutMs: NaN }],
    ["timeoutMs", { timeoutMs: -1 }],
    ["timeoutMs", { timeoutMs: "100" }],
    ["timeoutMs", { timeoutMs: null }],
    ["pollMs", { pollMs: NaN }],
    ["pollMs", { pollMs: 0 }],
    ["pollMs", { pollMs: -5 }],
    ["pollMs", { pollMs: Infinity }],
  ];
  for (const [option, options] of bad) {
    const names = (error: unknown) =>
      error instanceof RangeError && error.message.includes(`'${option}'`);
    const label = JSON.stringify(options) ?? String(options);
    await assert.rejects(storage.waitFor(id, options), names, `waitFor ${label}`);
    await assert.rejects(storage.waitForRun(runId, options), names, `waitForRun ${label}`);
  }
  // Infinity waits without a deadline; a poll of 30 days is checked against the deadline.
  const forever = storage.waitFor(id, { timeoutMs: Infinity, pollMs: 5 });
  await storage.kill(id);
  assert.equal((await forever)[0]?.status, "killed");
  await assert.rejects(
    storage.waitFor(await storage.push(2), { timeoutMs: 50, pollMs: MONTH_MS }),
    WaitTimeoutError,
  );
});
