import assert from "node:assert/strict";
import {
  Config,
  SqliteStorage,
  Task,
  TaskNotFoundError,
  TaskStateError,
  type TaskStatus,
  WaitTimeoutError,
  WorkerBuilder,
} from "../../mod.ts";
import { taskRescueOrphans } from "../../lib/store/tasks.ts";
import { FakeClock, runUntilFinished, tempDatabase, waitUntil } from "../_helpers.ts";

/** Runs a worker over `storage` until every id has finished, then stops it. */
async function work<T>(
  storage: SqliteStorage<T>,
  ids: readonly string[],
  handler: (args: T) => unknown,
  name = "observer",
): Promise<void> {
  const worker = new WorkerBuilder(name)
    .backend(storage)
    .concurrency(2)
    .handleSignals(false)
    .build((args) => handler(args));
  await runUntilFinished(worker, storage, ids);
}

/** Calls a method that returns a promise; fails the test if it throws synchronously instead. */
function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return fn();
  } catch (error) {
    return assert.fail(
      `${what} threw synchronously instead of returning a rejected promise: ${error}`,
    );
  }
}

Deno.test("SqliteStorage.fetchById() resolves to undefined when the id is unknown", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage(tmp.db, "q");
  assert.equal(await storage.fetchById("01ARZ3NDEKTSV4RRFFQ69G5FAV"), undefined);
  assert.equal(await storage.fetchById(""), undefined);
});

Deno.test("SqliteStorage.listTasks() filters by queue and status and pages newest first", async () => {
  await using tmp = await tempDatabase();
  const clock = new FakeClock();
  const a = new SqliteStorage<string>(tmp.db, "a", { clock });
  const b = a.forQueue<string>("b");
  const aIds: string[] = [];
  const bIds: string[] = [];
  for (let i = 0; i < 5; i++) {
    aIds.push(await a.push(`a${i}`));
    clock.advance(1);
    if (i < 2) bIds.push(await b.push(`b${i}`));
    clock.advance(1);
  }
  await a.kill(aIds[1]!);

  const argsOf = (records: { args: unknown }[]) => records.map((record) => record.args);
  assert.deepEqual(argsOf(await a.listTasks({ queue: "a" })), ["a4", "a3", "a2", "a1", "a0"]);
  assert.deepEqual(argsOf(await a.listTasks({ queue: "a", pageSize: 3 })), ["a4", "a3", "a2"]);
  assert.deepEqual(argsOf(await a.listTasks({ queue: "a", page: 2, pageSize: 3 })), ["a1", "a0"]);
  assert.deepEqual(await a.listTasks({ queue: "a", page: 3, pageSize: 3 }), []);
  assert.deepEqual(argsOf(await a.listTasks({ queue: "a", status: "killed" })), ["a1"]);
  assert.deepEqual(argsOf(await a.listTasks({ queue: "a", status: "pending" })), [
    "a4",
    "a3",
    "a2",
    "a0",
  ]);
  assert.deepEqual(argsOf(await a.listTasks({ queue: "b", status: "pending" })), ["b1", "b0"]);
  assert.deepEqual(await a.listTasks({ queue: "b", status: "killed" }), []);
  assert.deepEqual(await a.listTasks({ queue: "nope" }), []);
  // No queue: every queue, newest first.
  assert.deepEqual(
    (await a.listTasks()).map((record) => record.id),
    [...aIds, ...bIds].sort().reverse(),
  );
  assert.deepEqual(argsOf(await a.listTasks({ status: "killed" })), ["a1"]);
});

Deno.test("SqliteStorage.listTasks() rejects with an error naming the option when status or page is invalid", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage(tmp.db, "q");
  // (Wrapped in async functions: the sync/async question is the next test's.)
  await assert.rejects(
    async () => await storage.listTasks({ status: "finished" as TaskStatus }),
    (error: unknown) =>
      error instanceof TypeError && error.message.includes("'status'") &&
      error.message.includes("finished"),
  );
  await assert.rejects(
    async () => await storage.listTasks({ page: 0 }),
    (error: unknown) => error instanceof RangeError && error.message.includes("'page'"),
  );
  await assert.rejects(
    async () => await storage.listTasks({ pageSize: 1.5 }),
    (error: unknown) => error instanceof RangeError && error.message.includes("'pageSize'"),
  );
  await assert.rejects(
    async () => await storage.retryAll({ queue: "q", status: "finished" as TaskStatus }),
    TypeError,
  );
});

Deno.test("SqliteStorage.listTasks() and vacuum() return rejected promises rather than throwing when options are invalid", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage(tmp.db, "q");
  // The API contract: every storage method returns a promise, so `.catch()` sees every error.
  await assert.rejects(
    call("listTasks", () => storage.listTasks({ status: "finished" as TaskStatus })),
    TypeError,
  );
  await assert.rejects(call("listTasks", () => storage.listTasks({ page: -1 })), RangeError);
  await assert.rejects(call("vacuum", () => storage.vacuum({ olderThanMs: -1 })), RangeError);
});

Deno.test("SqliteStorage.listQueues() and stats() count tasks per state when there are two queues", async () => {
  await using tmp = await tempDatabase();
  const clock = new FakeClock();
  const t = clock.now();
  const alpha = new SqliteStorage<number>(tmp.db, "alpha", { clock });
  const beta = alpha.forQueue<number>("beta");
  await alpha.push(1);
  await alpha.push(2, { runAt: t - 500 });
  await alpha.push(3, { runAfter: 60_000 }); // scheduled: pending but not due
  await alpha.kill(await alpha.push(4));
  const betaIds = await beta.pushAll([new Task(1), new Task(2)]);
  await work(beta, betaIds, (n) => n * 2);

  const zero = { pending: 0, queued: 0, running: 0, done: 0, failed: 0, killed: 0 };
  const alphaCounts = { ...zero, pending: 3, killed: 1, total: 4 };
  const betaCounts = { ...zero, done: 2, total: 2 };
  assert.deepEqual(await alpha.listQueues(), [
    {
      name: "alpha",
      counts: alphaCounts,
      oldestDueAt: t - 500,
      aliveWorkers: 0,
      paused: false,
      limits: {},
    },
    {
      name: "beta",
      counts: betaCounts,
      oldestDueAt: null,
      aliveWorkers: 0,
      paused: false,
      limits: {},
    },
  ]);
  assert.deepEqual(await alpha.stats("alpha"), alphaCounts);
  assert.deepEqual(await alpha.stats("beta"), betaCounts);
  assert.deepEqual(await beta.stats(), { ...zero, pending: 3, done: 2, killed: 1, total: 6 });
  assert.deepEqual(await alpha.stats("empty"), { ...zero, total: 0 });
});

Deno.test("SqliteStorage.retry() puts a killed task back to pending with attempts 0", async () => {
  await using tmp = await tempDatabase();
  const clock = new FakeClock();
  const storage = new SqliteStorage<string>(tmp.db, "q", { clock });
  const id = await storage.push("fails", { maxAttempts: 1 });
  await work(storage, [id], () => {
    throw new Error("broken");
  });
  const killed = await storage.fetchById(id);
  assert.equal(killed?.status, "killed");
  assert.equal(killed?.attempts, 1);

  clock.advance(5_000);
  const retried = await storage.retry(id);
  assert.equal(retried.status, "pending");
  assert.equal(retried.attempts, 0);
  assert.equal(retried.runAt, clock.now());
  assert.equal(retried.doneAt, null);
  assert.equal(retried.lockBy, null);
  assert.deepEqual(await storage.fetchById(id), retried);

  // It runs again from a fresh budget.
  await work(storage, [id], (text) => text.toUpperCase(), "second-run");
  const done = await storage.fetchById(id);
  assert.equal(done?.status, "done");
  assert.equal(done?.attempts, 1);
  assert.equal(done?.lastResult, "FAILS");
});

Deno.test("SqliteStorage.retry() rejects with TaskNotFoundError when the id is unknown", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage(tmp.db, "q");
  await assert.rejects(
    storage.retry("missing"),
    (error: unknown) =>
      error instanceof TaskNotFoundError && error.id === "missing" &&
      error.message.includes("missing"),
  );
  await assert.rejects(storage.kill("missing"), TaskNotFoundError);
});

Deno.test("SqliteStorage.kill() kills a pending task with the reason as its error", async () => {
  await using tmp = await tempDatabase();
  const clock = new FakeClock();
  const storage = new SqliteStorage<number>(tmp.db, "q", { clock });
  const id = await storage.push(1);
  clock.advance(250);
  const killed = await storage.kill(id, "no longer needed");
  assert.equal(killed.status, "killed");
  assert.equal(killed.lastError?.message, "no longer needed");
  assert.equal(killed.doneAt, clock.now());
  assert.deepEqual(await storage.fetchById(id), killed);

  const other = await storage.push(2);
  const byDefault = await storage.kill(other);
  assert.equal(byDefault.status, "killed");
  assert.equal(typeof byDefault.lastError?.message, "string");
  assert.ok(byDefault.lastError!.message.length > 0);

  // A killed task can be killed no more.
  await assert.rejects(storage.kill(id), TaskStateError);
});

Deno.test("SqliteStorage.kill() rejects with TaskStateError when the task is done", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "q");
  const id = await storage.push(20);
  await work(storage, [id], (n) => n + 1);
  await assert.rejects(
    storage.kill(id),
    (error: unknown) =>
      error instanceof TaskStateError && error.id === id && error.status === "done" &&
      error.message.includes(id),
  );
  const record = await storage.fetchById(id);
  assert.equal(record?.status, "done");
  assert.equal(record?.lastResult, 21);
});

Deno.test("SqliteStorage.retryAll() retries only the queue and status asked for and returns the count", async () => {
  await using tmp = await tempDatabase();
  const alpha = new SqliteStorage<number>(tmp.db, "alpha");
  const beta = alpha.forQueue<number>("beta");
  const alphaIds = await alpha.pushAll([new Task(1), new Task(2), new Task(3)]);
  await alpha.kill(alphaIds[0]!);
  await alpha.kill(alphaIds[1]!);
  const betaId = await beta.push(4);
  await beta.kill(betaId);

  assert.equal(await alpha.retryAll({ queue: "alpha", status: "killed" }), 2);
  for (const id of alphaIds) {
    const record = await alpha.fetchById(id);
    assert.equal(record?.status, "pending");
    assert.equal(record?.attempts, 0);
  }
  assert.equal((await beta.fetchById(betaId))?.status, "killed");
  assert.equal(await alpha.retryAll({ queue: "alpha", status: "killed" }), 0);
  assert.equal(await alpha.retryAll({ queue: "beta", status: "killed" }), 1);
  assert.equal((await beta.fetchById(betaId))?.status, "pending");
});

Deno.test("SqliteStorage.vacuum() deletes only done and killed tasks older than olderThanMs", async () => {
  await using tmp = await tempDatabase();
  const clock = new FakeClock();
  const storage = new SqliteStorage<string>(tmp.db, "q", { clock });
  // At t: one killed, one done, one pending for much later.
  const oldKilled = await storage.push("old-killed");
  await storage.kill(oldKilled);
  const waiting = await storage.push("waiting", { runAfter: 86_400_000 });
  const oldDone = await storage.push("old-done");
  await work(storage, [oldDone], (text) => text);
  // At t + 10 s: one more killed, one fresh pending.
  clock.advance(10_000);
  const newKilled = await storage.push("new-killed");
  await storage.kill(newKilled);
  const fresh = await storage.push("fresh", { runAfter: 86_400_000 });

  assert.equal(await storage.vacuum({ olderThanMs: 60_000 }), 0);
  assert.equal(await storage.vacuum({ olderThanMs: 5_000 }), 2);
  assert.equal(await storage.fetchById(oldKilled), undefined);
  assert.equal(await storage.fetchById(oldDone), undefined);
  assert.equal((await storage.fetchById(newKilled))?.status, "killed");

  await assert.rejects(
    async () => await storage.vacuum({ olderThanMs: -1 }),
    (error: unknown) => error instanceof RangeError && error.message.includes("'olderThanMs'"),
  );
  assert.equal(await storage.vacuum(), 1);
  assert.equal(await storage.fetchById(newKilled), undefined);
  assert.deepEqual(
    (await storage.listTasks()).map((record) => record.id).sort(),
    [waiting, fresh].sort(),
  );
});

Deno.test("SqliteStorage.delete() removes a task and resolves false when there is none", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "q");
  const id = await storage.push(1);
  const kept = await storage.push(2);
  assert.equal(await storage.delete(id), true);
  assert.equal(await storage.fetchById(id), undefined);
  assert.equal(await storage.delete(id), false);
  assert.equal((await storage.fetchById(kept))?.args, 2);
});

Deno.test("SqliteStorage.waitFor() resolves with records in the requested order when all finish", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "q");
  const [a, b, c] = await storage.pushAll([new Task("a"), new Task("b"), new Task("c")]);
  const waiting = storage.waitFor([c!, a!, b!], { timeoutMs: 10_000 });
  await work(storage, [a!, b!, c!], (text) => `${text}!`);
  const records = await waiting;
  assert.deepEqual(records.map((record) => record.id), [c, a, b]);
  assert.deepEqual(records.map((record) => record.lastResult), ["c!", "a!", "b!"]);
  assert.ok(records.every((record) => record.status === "done"));
  const [single] = await storage.waitFor(b!);
  assert.equal(single?.id, b);
});

Deno.test("SqliteStorage.waitFor() rejects with WaitTimeoutError when a task does not finish in time", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "q");
  const finished = await storage.push("finished");
  await storage.kill(finished); // killed counts as finished
  const stuck = await storage.push("stuck");
  await assert.rejects(
    storage.waitFor([finished, stuck], { timeoutMs: 50, pollMs: 10 }),
    (error: unknown) =>
      error instanceof WaitTimeoutError && error.pending.length === 1 &&
      error.pending[0] === stuck && error.message.includes(stuck),
  );
});

Deno.test("SqliteStorage.waitFor() rejects with TaskNotFoundError when an id is unknown", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "q");
  const known = await storage.push("known");
  await assert.rejects(
    storage.waitFor([known, "ghost"], { timeoutMs: 5_000 }),
    (error: unknown) => error instanceof TaskNotFoundError && error.id === "ghost",
  );
});

Deno.test("SqliteStorage.listWorkers() shows a worker alive while it runs and not alive after it stops", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, new Config("jobs").setKeepAlive(50));
  const worker = new WorkerBuilder("lister")
    .backend(storage)
    .concurrency(3)
    .handleSignals(false)
    .build((n) => n);
  const running = worker.run();
  try {
    await waitUntil(
      async () => (await storage.listWorkers()).length === 1,
      "the worker to register",
    );
    const [info] = await storage.listWorkers("jobs");
    assert.ok(info);
    assert.equal(info.name, "lister");
    assert.equal(info.queue, "jobs");
    assert.equal(info.alive, true);
    assert.equal(info.stoppedAt, null);
    assert.equal(info.pid, Deno.pid);
    assert.equal(info.concurrency, 3);
    assert.equal(typeof info.host, "string");
    assert.deepEqual(await storage.listWorkers("other"), []);
    const [queue] = await storage.listQueues();
    assert.equal(queue?.name, "jobs");
    assert.equal(queue?.aliveWorkers, 1);
  } finally {
    await worker.stop();
    await running;
  }
  const [after] = await storage.listWorkers();
  assert.equal(after?.name, "lister");
  assert.equal(after?.alive, false);
  assert.equal(typeof after?.stoppedAt, "number");
  assert.equal((await storage.listQueues())[0]?.aliveWorkers, 0);
});

Deno.test("SqliteStorage.throughput() counts done tasks, failed attempts and killed tasks per queue and minute", async () => {
  await using temp = await tempDatabase();
  const storage = new SqliteStorage<{ fail: number }>(temp.db, "q1");
  const other = storage.forQueue<{ fail: number }>("q2");
  const ids = [
    await storage.push({ fail: 0 }),
    await storage.push({ fail: 1 }, { maxAttempts: 2 }), // fails once, then done
    await storage.push({ fail: 9 }, { maxAttempts: 1 }), // killed on its first failure
  ];
  const untouched = await other.push({ fail: 0 });
  const seen = new Map<number, number>();
  const worker = new WorkerBuilder("counter")
    .backend(storage)
    .retry({ backoff: () => 0 })
    .handleSignals(false)
    .build((args) => {
      const attempt = (seen.get(args.fail) ?? 0) + 1;
      seen.set(args.fail, attempt);
      if (attempt <= args.fail) throw new Error(`attempt ${attempt} fails`);
      return "ok";
    });
  await runUntilFinished(worker, storage, ids);
  await other.kill(untouched);
  await storage.retry(ids[2]!); // a retry is not an outcome: nothing is counted for it

  const points = await storage.throughput();
  const total = (queue: string) =>
    points.filter((p) => p.queue === queue).reduce(
      (sum, p) => ({
        done: sum.done + p.done,
        failed: sum.failed + p.failed,
        killed: sum.killed + p.killed,
      }),
      { done: 0, failed: 0, killed: 0 },
    );
  assert.deepEqual(total("q1"), { done: 2, failed: 1, killed: 1 });
  assert.deepEqual(total("q2"), { done: 0, failed: 0, killed: 1 });
  for (const point of points) assert.equal(point.minute % 60_000, 0, "minutes start on the minute");
  assert.deepEqual(
    await storage.throughput({ queue: "q2" }),
    points.filter((p) => p.queue === "q2"),
  );
});

Deno.test("SqliteStorage.throughput() counts a task killed by orphan rescue on its last attempt, and not one rescued to pending", async () => {
  await using temp = await tempDatabase();
  const clock = new FakeClock(Date.UTC(2026, 0, 1, 12, 0, 30));
  const storage = new SqliteStorage<number>(temp.db, "q", { clock });
  const last = await storage.push(1, { maxAttempts: 1 });
  const spare = await storage.push(2, { maxAttempts: 3 });
  // Both held by a worker that never registered (it died): one on its last attempt.
  temp.db.run(
    `UPDATE apalis_tasks SET status = 'running', attempts = 1, lock_by = 'ghost', lock_at = ?
     WHERE id IN (?, ?)`,
    [clock.now(), last, spare],
  );
  assert.equal(temp.db.transaction(() => taskRescueOrphans(temp.db, clock.now())), 2);
  assert.equal((await storage.fetchById(last))?.status, "killed");
  assert.equal((await storage.fetchById(spare))?.status, "pending");
  assert.deepEqual(await storage.throughput(), [
    { queue: "q", minute: Date.UTC(2026, 0, 1, 12, 0, 0), done: 0, failed: 0, killed: 1 },
  ]);
});

Deno.test("SqliteStorage.throughput() keeps only the last `minutes`, and vacuum() forgets older minutes", async () => {
  await using temp = await tempDatabase();
  const clock = new FakeClock(Date.UTC(2026, 0, 1, 12, 0, 30));
  const storage = new SqliteStorage<number>(temp.db, "q", { clock });
  await storage.kill(await storage.push(1));
  clock.advance(2 * 60 * 60_000); // two hours later
  await storage.kill(await storage.push(2));
  const lastHour = await storage.throughput();
  assert.deepEqual(lastHour, [
    { queue: "q", minute: Date.UTC(2026, 0, 1, 14, 0, 0), done: 0, failed: 0, killed: 1 },
  ]);
  assert.equal((await storage.throughput({ minutes: 24 * 60 })).length, 2);
  await storage.vacuum({ olderThanMs: 60 * 60_000 });
  assert.equal((await storage.throughput({ minutes: 24 * 60 })).length, 1);
  await assert.rejects(() => storage.throughput({ minutes: 0 }), RangeError);
});
