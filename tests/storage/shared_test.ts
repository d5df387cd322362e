import assert from "node:assert/strict";
import {
  Config,
  SharedQueueError,
  SharedSqliteStorage,
  SqliteStorage,
  Task,
  type TaskContext,
  type Worker,
  WorkerBuilder,
} from "../../mod.ts";
import { tempDatabase, waitUntil, workerBlockedAt } from "../_helpers.ts";

Deno.test("SharedSqliteStorage routes three job types to their own workers through one fetcher", async () => {
  await using temp = await tempDatabase();
  const store = new SharedSqliteStorage(temp.db);
  const maps = store.makeShared<Record<string, string>>("maps");
  const ints = store.makeShared<number>("ints");
  const strs = store.makeShared<string>("strs");
  const seen = new Map<string, unknown[]>([["maps", []], ["ints", []], ["strs", []]]);
  const record = (args: unknown, ctx: TaskContext) => void seen.get(ctx.queue)!.push(args);
  const workers = [
    new WorkerBuilder("w-maps").backend(maps).concurrency(4).handleSignals(false).build(record),
    new WorkerBuilder("w-ints").backend(ints).concurrency(4).handleSignals(false).build(record),
    new WorkerBuilder("w-strs").backend(strs).concurrency(4).handleSignals(false).build(record),
  ];
  const runs = workers.map((worker) => worker.run());
  try {
    await waitUntil(
      async () => (await maps.listWorkers()).filter((w) => w.alive).length === 3,
      "3 workers",
    );
    // All three queues get work in one transaction: the first worker to fetch claims for all.
    temp.db.transaction(() => {
      for (let i = 0; i < 20; i++) {
        maps.pushSync({ key: `v${i}` });
        ints.pushSync(i);
        strs.pushSync(`s${i}`);
      }
    });
    await waitUntil(async () => (await maps.stats()).done === 60, "all 60 tasks done");
  } finally {
    await Promise.all(workers.map((worker) => worker.stop()));
    await Promise.all(runs);
  }
  assert.deepEqual(seen.get("ints")!.toSorted((a, b) => (a as number) - (b as number)), [
    ...Array.from({ length: 20 }, (_, i) => i),
  ]);
  assert.ok(seen.get("maps")!.every((v) => typeof v === "object"), "maps got only objects");
  assert.ok(seen.get("strs")!.every((v) => typeof v === "string"), "strs got only strings");
  assert.equal(seen.get("strs")!.length, 20);
  assert.ok(
    store.fetcher.sharedClaims >= 1,
    `one claim statement served several queues (claims ${store.fetcher.claims}, shared ${store.fetcher.sharedClaims})`,
  );
  assert.ok(store.fetcher.claims < 60, `far fewer claims than tasks: ${store.fetcher.claims}`);
  const rows = temp.db.all<{ queue: string; lock_by: string }>(
    "SELECT DISTINCT queue, lock_by FROM apalis_tasks ORDER BY queue",
  );
  assert.deepEqual(rows.map((row) => ({ ...row })), [
    { queue: "ints", lock_by: "w-ints" },
    { queue: "maps", lock_by: "w-maps" },
    { queue: "strs", lock_by: "w-strs" },
  ]);
});

Deno.test("Worker of a shared storage claims its own queue's tasks straight into running, ahead of its free slots, and gives those back when it stops", async () => {
  await using temp = await tempDatabase();
  const store = new SharedSqliteStorage(temp.db);
  const quick = store.makeShared<number>(new Config("quick").setBufferSize(20));
  store.makeShared<number>("other"); // a second queue, with no worker
  const BLOCK = 3000;
  await quick.pushAll(Array.from({ length: BLOCK + 100 }, (_, i) => new Task(i)));
  const { worker, blocked, release } = workerBlockedAt(quick, "quick-worker", BLOCK);
  const running = worker.run();
  const held = () =>
    temp.db.all<{ id: string; attempts: number }>(
      "SELECT id, attempts FROM apalis_tasks WHERE status = 'running' AND lock_by = 'quick-worker'",
    );
  await blocked;
  // The blocked task, and 20 claimed ahead at the pace of the 3,000 before it: never `queued`.
  await waitUntil(() => held().length === 21, "the worker to hold 20 tasks ahead");
  assert.equal((await quick.stats()).queued, 0);
  assert.ok(held().every((row) => row.attempts === 1), "the attempt counts at the claim");
  const stopped = worker.stop();
  release();
  await stopped;
  await running;
  const counts = await quick.stats();
  assert.deepEqual(
    { done: counts.done, pending: counts.pending, running: counts.running },
    { done: BLOCK + 1, pending: 99, running: 0 },
  );
  const waiting = temp.db.all<{ attempts: number }>(
    "SELECT attempts FROM apalis_tasks WHERE status = 'pending'",
  );
  assert.ok(waiting.every((row) => row.attempts === 0), "attempts given back on a graceful stop");
});

Deno.test("SharedSqliteStorage's fetcher serves idle workers and leaves busy ones to claim for themselves", async () => {
  await using temp = await tempDatabase();
  const store = new SharedSqliteStorage(temp.db);
  const queues = ["left", "right"].map((queue) => store.makeShared<number>(queue));
  const PER_QUEUE = 10_000;
  for (const storage of queues) {
    await storage.pushAll(Array.from({ length: PER_QUEUE }, (_, i) => new Task(i)));
  }
  // Count the tasks one worker's claim hands to the other (through `queued`).
  let handedOver = 0;
  const deliver = store.fetcher.deliver.bind(store.fetcher);
  store.fetcher.deliver = (byQueue, except) => {
    for (const [queue, rows] of byQueue) if (queue !== except) handedOver += rows.length;
    deliver(byQueue, except);
  };
  let handled = 0;
  const workers: Worker<number>[] = queues.map((storage, i) =>
    new WorkerBuilder(`worker-${i}`).backend(storage).concurrency(16).handleSignals(false)
      .build(() => {
        if (++handled === 2 * PER_QUEUE) { for (const worker of workers) void worker.stop(); }
      })
  );
  await Promise.all(workers.map((worker) => worker.run()));
  for (const storage of queues) assert.equal((await storage.stats(storage.queue)).done, PER_QUEUE);
  // At the start one worker serves the other, still idle; then each claims its own. (Serving a
  // worker whose tasks had just finished, before its own write, handed over ~15 % of them.)
  assert.ok(handedOver > 0 && handedOver <= 4 * 16, `tasks handed over: ${handedOver}`);
});

Deno.test("SharedSqliteStorage.makeShared() refuses a queue registered twice", () => {
  const store = new SharedSqliteStorage(":memory:");
  try {
    SqliteStorage.setup(store.db);
    store.makeShared<number>("ints");
    assert.throws(
      () => store.makeShared<number>("ints"),
      (error: unknown) =>
        error instanceof SharedQueueError &&
        /queue 'ints': it is registered already/.test(error.message),
    );
    assert.deepEqual(store.queues, ["ints"]);
  } finally {
    store.db.close();
  }
});

Deno.test("Worker.run() rejects with SharedQueueError when a shared queue already has a worker", async () => {
  await using temp = await tempDatabase();
  const store = new SharedSqliteStorage(temp.db);
  const ints = store.makeShared<number>("ints");
  const first = new WorkerBuilder("first").backend(ints).handleSignals(false).build(() => {});
  const running = first.run();
  try {
    const second = new WorkerBuilder("second").backend(ints).handleSignals(false).build(() => {});
    await assert.rejects(
      second.run(),
      (error: unknown) =>
        error instanceof SharedQueueError && /worker 'first' already runs it/.test(error.message),
    );
    assert.ok(!(await ints.listWorkers()).some((w) => w.name === "second"), "nothing registered");
  } finally {
    await first.stop();
    await running;
  }
});
