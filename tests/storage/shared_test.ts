import assert from "node:assert/strict";
import {
  SharedQueueError,
  SharedSqliteStorage,
  SqliteStorage,
  type TaskContext,
  WorkerBuilder,
} from "../../mod.ts";
import { tempDatabase, waitUntil } from "../_helpers.ts";

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
