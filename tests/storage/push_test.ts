import assert from "node:assert/strict";
import {
  Config,
  DuplicateTaskError,
  type PushOptions,
  SqliteStorage,
  Task,
  WorkerBuilder,
} from "../../mod.ts";
import { DEFAULT_MAX_ATTEMPTS } from "../../lib/storage/task.ts";
import { FakeClock, runUntilFinished, tempDatabase, waitUntil } from "../_helpers.ts";

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** A fake clock that counts how often it is read (a worker reads it on every poll). */
class CountingClock extends FakeClock {
  reads = 0;
  override now(): number {
    this.reads++;
    return super.now();
  }
}

async function total(storage: SqliteStorage<unknown>): Promise<number> {
  return (await storage.stats()).total;
}

Deno.test("SqliteStorage.push() stores a pending task with defaults and returns a ULID when no options are given", async () => {
  await using tmp = await tempDatabase();
  const clock = new FakeClock();
  const storage = new SqliteStorage<{ to: string }>(tmp.db, "email", { clock });
  const id = await storage.push({ to: "ada@example.com" });
  assert.equal(id.length, 26);
  assert.match(id, ULID);
  const record = await storage.fetchById(id);
  assert.ok(record);
  assert.deepEqual(record, {
    id,
    queue: "email",
    status: "pending",
    args: { to: "ada@example.com" },
    attempts: 0,
    maxAttempts: DEFAULT_MAX_ATTEMPTS,
    priority: 0,
    runAt: clock.now(),
    createdAt: clock.now(),
    lockBy: null,
    lockAt: null,
    doneAt: null,
    lastResult: undefined,
    lastError: undefined,
    meta: {},
    runId: null,
  });
});

Deno.test("SqliteStorage.push() returns ids that sort in push order when pushed one after another", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "q");
  const ids: string[] = [];
  for (let i = 0; i < 20; i++) ids.push(await storage.push(i)); // many within one millisecond
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual([...ids].sort(), ids);

  // Across milliseconds of an injected clock too.
  const clock = new FakeClock();
  const timed = new SqliteStorage<number>(tmp.db, "timed", { clock });
  const later: string[] = [];
  for (let i = 0; i < 5; i++) {
    later.push(await timed.push(i));
    clock.advance(1);
  }
  assert.deepEqual([...later].sort(), later);
  for (const id of later) assert.match(id, ULID);
});

Deno.test("SqliteStorage.push() rejects with an error naming the field and writes nothing when an option is invalid", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "q");
  const cases: [field: string, options: PushOptions][] = [
    ["priority", { priority: 1.5 }],
    ["priority", { priority: Number.NaN }],
    ["maxAttempts", { maxAttempts: 0 }],
    ["maxAttempts", { maxAttempts: 2.5 }],
    ["runAfter", { runAfter: -1 }],
    ["runAfter", { runAfter: Number.POSITIVE_INFINITY }],
    ["runAt", { runAt: new Date("not a date") }],
    ["runAt", { runAt: Number.NaN }],
    ["id", { id: "" }],
    ["id", { id: 42 as unknown as string }],
    ["meta", { meta: ["not", "an", "object"] as unknown as Record<string, unknown> }],
    ["factor", { backoff: { factor: 0.5 } }],
  ];
  for (const [field, options] of cases) {
    const names = (error: unknown) =>
      (error instanceof RangeError || error instanceof TypeError) &&
      error.message.includes(`'${field}'`);
    const label = `${field}: ${JSON.stringify(options)}`;
    await assert.rejects(storage.push(1, options), names, label);
    assert.throws(() => storage.pushSync(1, options), names, label);
    await assert.rejects(storage.pushAll([new Task(0), new Task(1, options)]), names, label);
    await assert.rejects(storage.pushStream([0, 1], options), names, label);
  }
  assert.equal(await total(storage), 0);
});

Deno.test("Task.builder() options round-trip into fetchById when the task is pushed", async () => {
  await using tmp = await tempDatabase();
  const clock = new FakeClock();
  const storage = new SqliteStorage<{ to: string }>(tmp.db, "email", { clock });
  const task = Task.builder({ to: "ada" })
    .runAfter(5_000)
    .priority(3)
    .maxAttempts(2)
    .id("custom-1")
    .meta("tenant", "acme")
    .meta("n", 2)
    .backoff({ initialMs: 10, factor: 3, maxMs: 100, jitter: 0 })
    .build();
  assert.equal(await storage.pushTask(task), "custom-1");
  const record = await storage.fetchById("custom-1");
  assert.ok(record);
  assert.equal(record.id, "custom-1");
  assert.deepEqual(record.args, { to: "ada" });
  assert.equal(record.runAt, clock.now() + 5_000);
  assert.equal(record.priority, 3);
  assert.equal(record.maxAttempts, 2);
  assert.deepEqual(record.meta, { tenant: "acme", n: 2 });
  assert.equal(record.status, "pending");

  // runAt takes a Date or epoch ms; the last of runAt/runAfter wins.
  const at = clock.now() + 777;
  const byDate = await storage.pushTask(Task.builder({ to: "b" }).runAt(new Date(at)).build());
  const byNumber = await storage.pushTask(Task.builder({ to: "c" }).runAt(at + 1).build());
  const afterThenAt = await storage.pushTask(
    Task.builder({ to: "d" }).runAfter(50).runAt(at + 2).build(),
  );
  const atThenAfter = await storage.pushTask(
    Task.builder({ to: "e" }).runAt(at + 3).runAfter(50).build(),
  );
  assert.equal((await storage.fetchById(byDate))?.runAt, at);
  assert.equal((await storage.fetchById(byNumber))?.runAt, at + 1);
  assert.equal((await storage.fetchById(afterThenAt))?.runAt, at + 2);
  assert.equal((await storage.fetchById(atThenAfter))?.runAt, clock.now() + 50);
});

Deno.test("Task.builder().backoff() sets the retry delay of that task when the worker has another", async () => {
  await using tmp = await tempDatabase();
  const clock = new FakeClock();
  const storage = new SqliteStorage<string>(tmp.db, "q", { clock });
  const own = await storage.pushTask(
    Task.builder("own").backoff({ initialMs: 10, factor: 2, jitter: 0 }).build(),
  );
  const viaPush = await storage.push("push", { backoff: { initialMs: 20, jitter: 0 } });
  const inherited = await storage.push("inherited");
  const worker = new WorkerBuilder("backoff-worker")
    .backend(storage)
    .concurrency(3)
    .retry({ backoff: { initialMs: 60_000, jitter: 0 } })
    .handleSignals(false)
    .build(() => {
      throw new Error("nope");
    });
  const running = worker.run();
  try {
    await waitUntil(async () => {
      const records = await Promise.all(
        [own, viaPush, inherited].map((id) => storage.fetchById(id)),
      );
      return records.every((record) => record?.status === "failed");
    }, "three failed attempts");
  } finally {
    await worker.stop();
    await running;
  }
  const now = clock.now();
  const [a, b, c] = await Promise.all(
    [own, viaPush, inherited].map((id) => storage.fetchById(id)),
  );
  assert.equal(a?.runAt, now + 10);
  assert.equal(b?.runAt, now + 20);
  assert.equal(c?.runAt, now + 60_000);
  assert.equal(a?.attempts, 1);
  assert.equal(a?.lastError?.message, "nope");
});

Deno.test("SqliteStorage.push() rejects with DuplicateTaskError and keeps the first task when the id exists", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<{ v: number }>(tmp.db, "q");
  assert.equal(await storage.push({ v: 1 }, { id: "dup" }), "dup");
  await assert.rejects(
    storage.push({ v: 2 }, { id: "dup" }),
    (error: unknown) =>
      error instanceof DuplicateTaskError && error.id === "dup" && error.message.includes("dup"),
  );
  assert.throws(() => storage.pushSync({ v: 3 }, { id: "dup" }), DuplicateTaskError);
  // Ids are unique across queues: fetchById takes no queue.
  await assert.rejects(
    storage.forQueue<{ v: number }>("other").push({ v: 4 }, { id: "dup" }),
    DuplicateTaskError,
  );
  assert.deepEqual((await storage.fetchById("dup"))?.args, { v: 1 });
  assert.equal(await total(storage), 1);
});

Deno.test("SqliteStorage.pushAll() writes nothing when the batch contains a duplicate id", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "q");
  await assert.rejects(
    storage.pushAll([
      Task.builder(1).id("x1").build(),
      Task.builder(2).id("x2").build(),
      Task.builder(3).id("x1").build(),
    ]),
    (error: unknown) => error instanceof DuplicateTaskError && error.id === "x1",
  );
  assert.equal(await total(storage), 0);

  // Large enough to need several INSERT statements: the transaction, not one statement, is atomic.
  const many = Array.from({ length: 250 }, (_, i) => new Task(i, { id: `m${i}` }));
  await assert.rejects(
    storage.pushAll([...many, new Task(-1, { id: "m3" })]),
    (error: unknown) => error instanceof DuplicateTaskError && error.id === "m3",
  );
  assert.equal(await total(storage), 0);

  await storage.push(0, { id: "taken" });
  await assert.rejects(
    storage.pushAll([...many, new Task(2, { id: "taken" }), new Task(3)]),
    (error: unknown) => error instanceof DuplicateTaskError && error.id === "taken",
  );
  assert.equal(await total(storage), 1);

  // A clean batch goes in whole, ids in input order.
  const ids = await storage.pushAll([new Task(1), new Task(2, { priority: 4 }), new Task(3)]);
  assert.equal(ids.length, 3);
  const records = await Promise.all(ids.map((id) => storage.fetchById(id)));
  assert.deepEqual(records.map((record) => record?.args), [1, 2, 3]);
  assert.equal(records[1]?.priority, 4);
  assert.deepEqual(await storage.pushAll([]), []);
});

Deno.test("SqliteStorage.pushAll() writes every task when given sync and async iterables", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "q");
  async function* asyncTasks() {
    for (let i = 0; i < 5; i++) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      yield new Task(i, { priority: i });
    }
  }
  function* syncTasks() {
    for (let i = 10; i < 13; i++) yield Task.builder(i).build();
  }
  const asyncIds = await storage.pushAll(asyncTasks());
  const syncIds = await storage.pushAll(syncTasks());
  assert.equal(asyncIds.length, 5);
  assert.equal(syncIds.length, 3);
  const records = await Promise.all([...asyncIds, ...syncIds].map((id) => storage.fetchById(id)));
  assert.deepEqual(records.map((record) => record?.args), [0, 1, 2, 3, 4, 10, 11, 12]);
  assert.deepEqual(records.slice(0, 5).map((record) => record?.priority), [0, 1, 2, 3, 4]);
});

Deno.test("SqliteStorage.pushStream() writes all items and returns ids in order when given a sync generator", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "q");
  function* numbers() {
    for (let i = 0; i < 25; i++) yield i;
  }
  const ids = await storage.pushStream(numbers(), { priority: 2 });
  assert.equal(ids.length, 25);
  assert.equal(new Set(ids).size, 25);
  const records = await Promise.all(ids.map((id) => storage.fetchById(id)));
  assert.deepEqual(records.map((record) => record?.args), [...numbers()]);
  assert.ok(records.every((record) => record?.priority === 2 && record.status === "pending"));
  assert.deepEqual(await storage.pushStream([]), []);
});

Deno.test("SqliteStorage.pushStream() writes all items in batches when given an async generator and batchSize 7", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<{ n: number }>(tmp.db, "q");
  async function* numbers(count: number) {
    for (let n = 0; n < count; n++) {
      await Promise.resolve();
      yield { n };
    }
  }
  const ids = await storage.pushStream(numbers(20), { batchSize: 7 });
  assert.equal(ids.length, 20);
  const records = await Promise.all(ids.map((id) => storage.fetchById(id)));
  assert.deepEqual(
    records.map((record) => record?.args.n),
    Array.from({ length: 20 }, (_, n) => n),
  );
  assert.equal(await total(storage), 20);

  // Batches written before a failure stay: the stream is not one transaction.
  const failing = storage.forQueue<{ n: number }>("failing");
  async function* breaksAfterTen() {
    yield* numbers(10);
    throw new Error("source broke");
  }
  await assert.rejects(failing.pushStream(breaksAfterTen(), { batchSize: 7 }), /source broke/);
  assert.equal((await failing.stats("failing")).total, 7);
});

Deno.test("SqliteStorage.pushSync() commits with the caller's writes when called inside db.transaction", async () => {
  await using tmp = await tempDatabase();
  const { db } = tmp;
  db.exec("CREATE TABLE users (email TEXT NOT NULL)");
  const welcome = new SqliteStorage<string>(db, "welcome");
  const id = db.transaction(() => {
    db.run("INSERT INTO users (email) VALUES (?)", ["ada@example.com"]);
    return welcome.pushSync("ada@example.com", { priority: 2 });
  });
  assert.match(id, ULID);
  assert.equal(db.get<{ n: number }>("SELECT count(*) AS n FROM users")?.n, 1);
  const record = await welcome.fetchById(id);
  assert.equal(record?.status, "pending");
  assert.equal(record?.args, "ada@example.com");
  assert.equal(record?.priority, 2);
});

Deno.test("SqliteStorage.pushSync() leaves no task and no user row when the caller's transaction throws", async () => {
  await using tmp = await tempDatabase();
  const { db } = tmp;
  db.exec("CREATE TABLE users (email TEXT NOT NULL)");
  const welcome = new SqliteStorage<string>(db, "welcome");
  let id: string | undefined;
  assert.throws(
    () =>
      db.transaction(() => {
        db.run("INSERT INTO users (email) VALUES (?)", ["ada@example.com"]);
        id = welcome.pushSync("ada@example.com");
        throw new Error("signup failed");
      }),
    /signup failed/,
  );
  assert.ok(id, "pushSync returned an id before the rollback");
  assert.equal(await welcome.fetchById(id), undefined);
  assert.equal(db.get<{ n: number }>("SELECT count(*) AS n FROM users")?.n, 0);
  assert.equal(await total(welcome), 0);

  // In a nested transaction that fails, only the inner push is undone.
  let inner: string | undefined;
  const outer = db.transaction(() => {
    db.run("INSERT INTO users (email) VALUES (?)", ["bob@example.com"]);
    assert.throws(() =>
      db.transaction(() => {
        inner = welcome.pushSync("inner");
        throw new Error("inner failed");
      }), /inner failed/);
    return welcome.pushSync("outer");
  });
  assert.equal(await welcome.fetchById(inner!), undefined);
  assert.equal((await welcome.fetchById(outer))?.args, "outer");
  assert.equal(db.get<{ n: number }>("SELECT count(*) AS n FROM users")?.n, 1);
});

Deno.test("SqliteStorage.push() resolves runAfter against the injected clock when a FakeClock is given", async () => {
  await using tmp = await tempDatabase();
  const clock = new FakeClock(Date.UTC(2030, 5, 1));
  const storage = new SqliteStorage<number>(tmp.db, "q", { clock });
  assert.equal(storage.clock, clock);
  const first = await storage.push(1, { runAfter: 1_500 });
  clock.advance(10_000);
  const second = await storage.push(2, { runAfter: 1 });
  const a = await storage.fetchById(first);
  const b = await storage.fetchById(second);
  assert.equal(a?.createdAt, Date.UTC(2030, 5, 1));
  assert.equal(a?.runAt, Date.UTC(2030, 5, 1) + 1_500);
  assert.equal(b?.createdAt, Date.UTC(2030, 5, 1) + 10_000);
  assert.equal(b?.runAt, Date.UTC(2030, 5, 1) + 10_001);
});

for (const bufferSize of [1, 10]) {
  Deno.test(`Worker runs tasks by priority, then runAt, then push order when bufferSize is ${bufferSize}`, async () => {
    await using tmp = await tempDatabase();
    const clock = new FakeClock();
    const t = clock.now();
    const storage = new SqliteStorage<string>(
      tmp.db,
      new Config("ordered").setBufferSize(bufferSize),
      { clock },
    );
    const ids = [
      await storage.push("low-recent", { runAt: t - 1_000 }),
      await storage.push("mid-first", { priority: 1, runAt: t - 100 }),
      await storage.push("low-oldest", { runAt: new Date(t - 10_000) }),
      await storage.push("high", { priority: 5 }),
      await storage.push("mid-second", { priority: 1, runAt: t - 100 }),
      await storage.push("low-old", { runAt: t - 5_000 }),
      await storage.push("negative", { priority: -1, runAt: t - 60_000 }),
      await storage.push("low-now"),
    ];
    const order: string[] = [];
    const worker = new WorkerBuilder(`orderer-${bufferSize}`)
      .backend(storage)
      .concurrency(1)
      .handleSignals(false)
      .build((name) => {
        order.push(name);
      });
    await runUntilFinished(worker, storage, ids);
    assert.deepEqual(order, [
      "high",
      "mid-first",
      "mid-second",
      "low-oldest",
      "low-old",
      "low-recent",
      "low-now",
      "negative",
    ]);
  });
}

Deno.test("Worker never claims a delayed task when the clock has not reached its runAt", async () => {
  await using tmp = await tempDatabase();
  const clock = new CountingClock();
  const t = clock.now();
  const storage = new SqliteStorage<string>(tmp.db, new Config("delayed").withPollInterval(10), {
    clock,
  });
  const later1 = await storage.push("later-1", { runAfter: 60_000 });
  const later2 = await storage.pushTask(Task.builder("later-2").runAt(t + 120_000).build());
  const due = [await storage.push("due-1"), await storage.push("due-2")];
  const ran: string[] = [];
  const worker = new WorkerBuilder("delayed-worker")
    .backend(storage)
    .concurrency(1)
    .handleSignals(false)
    .build((name) => {
      ran.push(name);
    });
  const running = worker.run();
  try {
    await storage.waitFor(due, { timeoutMs: 10_000 });
    // The clock stands still while the worker polls again and again.
    const reads = clock.reads;
    await waitUntil(() => clock.reads >= reads + 20, "the worker to poll several more times");
    assert.deepEqual(ran, ["due-1", "due-2"]);
    for (const id of [later1, later2]) {
      const record = await storage.fetchById(id);
      assert.equal(record?.status, "pending");
      assert.equal(record?.attempts, 0);
      assert.equal(record?.lockBy, null);
    }

    clock.advance(60_000);
    const wake1 = await storage.push("wake-1");
    await storage.waitFor([later1, wake1], { timeoutMs: 10_000 });
    assert.equal((await storage.fetchById(later2))?.status, "pending");

    clock.advance(60_000);
    const wake2 = await storage.push("wake-2");
    await storage.waitFor([later2, wake2], { timeoutMs: 10_000 });
  } finally {
    await worker.stop();
    await running;
  }
  assert.deepEqual(ran, ["due-1", "due-2", "later-1", "wake-1", "later-2", "wake-2"]);
});

Deno.test("SqliteStorage.pushAll() gives every task of one call the same time, so equal delays fall due together", async () => {
  await using temp = await tempDatabase();
  let tick = Date.UTC(2026, 0, 1);
  const ticking = { now: () => tick++ }; // a clock that moves on every read
  const storage = new SqliteStorage<number>(temp.db, "q", { clock: ticking });
  const ids = await storage.pushAll(
    [1, 2, 3].map((n) => Task.builder(n).runAfter(1000).priority(n).build()),
  );
  const tasks = await Promise.all(ids.map((id) => storage.fetchById(id)));
  assert.deepEqual(
    new Set(tasks.map((task) => task?.runAt)),
    new Set([Date.UTC(2026, 0, 1) + 1000]),
  );
  assert.deepEqual(new Set(tasks.map((task) => task?.createdAt)), new Set([Date.UTC(2026, 0, 1)]));
});

Deno.test("SqliteStorage.pushAll() keeps every option when plain tasks and tasks with meta or backoff are mixed", async () => {
  await using temp = await tempDatabase();
  const storage = new SqliteStorage<number>(temp.db, "q");
  const tasks = Array.from(
    { length: 300 },
    (_, i) =>
      i % 3 === 0
        ? new Task(i, { meta: { n: i } })
        : i % 3 === 1
        ? new Task(i, { backoff: { initialMs: i + 1 }, priority: i, maxAttempts: 2 })
        : new Task(i, { priority: -i }),
  );
  const ids = await storage.pushAll(tasks);
  assert.equal(ids.length, 300);
  const records = await Promise.all(ids.map((id) => storage.fetchById(id)));
  records.forEach((task, i) => {
    assert.equal(task?.args, i);
    assert.equal(task?.status, "pending");
    assert.equal(task?.attempts, 0);
    assert.deepEqual(task?.meta, i % 3 === 0 ? { n: i } : {});
    assert.equal(task?.priority, i % 3 === 1 ? i : i % 3 === 2 ? -i : 0);
    assert.equal(task?.maxAttempts, i % 3 === 1 ? 2 : DEFAULT_MAX_ATTEMPTS);
  });
  const backoffs = temp.db.all<{ backoff: string | null }>(
    "SELECT backoff FROM apalis_tasks ORDER BY id",
  );
  assert.equal(backoffs.filter((row) => row.backoff !== null).length, 100);
});

Deno.test("SqliteStorage stores the JSON codec's arguments as a blob of their UTF-8 bytes, whichever push method wrote them", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<{ to: string; note: string }>(tmp.db, "email");
  const args = { to: "zoë@example.com", note: '日本語 🎉 \u0000 \ud800 "quoted"' };
  const ids = [
    await storage.push(args),
    ...(await storage.pushAll([new Task(args), new Task(args, { meta: { k: 1 } })])),
    storage.pushSync(args),
    await storage.pushStart(args), // a run's id: its first task has it as run_id
  ];
  const expected = new TextEncoder().encode(JSON.stringify(args));
  for (const id of ids) {
    const row = tmp.db.get<{ type: string; args: Uint8Array }>(
      "SELECT typeof(args) AS type, args FROM apalis_tasks WHERE id = ? OR run_id = ?",
      [id, id],
    );
    assert.equal(row?.type, "blob", id);
    assert.deepEqual(new Uint8Array(row!.args), expected, id);
  }
});
