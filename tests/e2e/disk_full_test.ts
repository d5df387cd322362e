/**
 * A full disk, simulated with `PRAGMA max_page_count`: a per-connection cap on the database's
 * size. A write that needs a page beyond it fails with SQLITE_FULL, as on a full disk, and SQLite
 * rolls back the whole transaction it was in.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type Database,
  DatabaseFileError,
  openDatabase,
  SqliteStorage,
  Task,
  WorkerBuilder,
  type WorkerEvent,
  WorkerFatalError,
  Workflow,
} from "../../mod.ts";
import { gate, tempDatabase, waitUntil } from "../_helpers.ts";

/** SQLite's default cap: as good as none. */
const NO_LIMIT = 1_073_741_823;

/** Caps `db` at its current size: from now on, a write that needs a new page fails. */
function fill(db: Database): void {
  const pages = db.get<{ page_count: number }>("PRAGMA page_count")!.page_count;
  db.exec(`PRAGMA max_page_count = ${pages}`);
}

/** Lifts the cap: space has returned. */
function makeRoom(db: Database): void {
  db.exec(`PRAGMA max_page_count = ${NO_LIMIT}`);
}

/** Tasks per state, counted in SQL. */
function counts(db: Database): Record<string, number> {
  const out: Record<string, number> = {};
  const rows = db.all<{ status: string; n: number }>(
    "SELECT status, count(*) AS n FROM apalis_tasks GROUP BY status ORDER BY status",
  );
  for (const row of rows) out[row.status] = row.n;
  return out;
}

function statusOf(db: Database, id: string): string | undefined {
  return db.get<{ status: string }>("SELECT status FROM apalis_tasks WHERE id = ?", [id])?.status;
}

function isFull(error: unknown): error is DatabaseFileError {
  return error instanceof DatabaseFileError && error.problem === "full";
}

const big = "x".repeat(5 * 1024 * 1024);

Deno.test("SqliteStorage.push() throws a DatabaseFileError naming the queue and writes nothing when the database is full", async () => {
  await using tmp = await tempDatabase();
  const queue = new SqliteStorage<string>(tmp.db, "q");
  await queue.pushAll(["a", "b", "c"].map((s) => Task.builder(s).build()));
  fill(tmp.db);

  await assert.rejects(queue.push(big), (error: unknown) => {
    assert.ok(isFull(error), `expected a full DatabaseFileError, got ${error}`);
    assert.equal(error.name, "DatabaseFileError");
    assert.equal(error.path, tmp.path);
    assert.equal(
      error.message,
      `Cannot push task to queue 'q' in database '${tmp.path}': the database or disk is full`,
    );
    assert.ok(error.cause instanceof Error, "the driver's error is kept as the cause");
    return true;
  });
  // All or none: a batch with one task that does not fit writes none of them.
  await assert.rejects(
    queue.pushAll(["small", big, "small"].map((s) => Task.builder(s).build())),
    (error: unknown) => isFull(error) && error.message.includes("push 3 tasks to queue 'q'"),
  );
  await assert.rejects(
    queue.pushStart(big),
    (error: unknown) =>
      isFull(error) && error.message.includes("start a workflow run on queue 'q'"),
  );
  assert.throws(
    () => queue.pushSync(big),
    (error: unknown) => isFull(error) && error.message.includes("push task to queue 'q'"),
  );
  await assert.rejects(queue.pushStream([big]), isFull);

  assert.deepEqual(counts(tmp.db), { pending: 3 });
  assert.equal(tmp.db.get<{ n: number }>("SELECT count(*) AS n FROM apalis_runs")!.n, 0);
  assert.equal(tmp.db.inTransaction, false);

  // Space returns: the same push goes through, on the same connection.
  makeRoom(tmp.db);
  const id = await queue.push(big);
  assert.equal((await queue.fetchById(id))?.args, big);
  assert.deepEqual(counts(tmp.db), { pending: 4 });
});

Deno.test("Database.transaction() commits nothing and throws the full-disk error when SQLite rolled it back, even if fn catches the error", async () => {
  await using tmp = await tempDatabase();
  const db = tmp.db;
  db.exec("CREATE TABLE t (x TEXT)");
  fill(db);
  const insert = (x: string) => db.run("INSERT INTO t (x) VALUES (?)", [x]);

  // SQLite rolls back the whole transaction on SQLITE_FULL: a statement after the caught error
  // must not run outside it (it would commit on its own), and nothing may be committed.
  assert.throws(() =>
    db.transaction(() => {
      insert("before");
      try {
        insert(big);
      } catch {
        // Swallowed on purpose.
      }
      insert("after");
    }), isFull);
  // The same through a nested transaction (a savepoint), as a worker's follow-up writes run.
  assert.throws(() =>
    db.transaction(() => {
      insert("before");
      try {
        db.transaction(() => insert(big));
      } catch (error) {
        assert.ok(isFull(error), `the savepoint reports the full disk, got ${error}`);
      }
      insert("after");
    }), isFull);
  assert.equal(db.inTransaction, false);
  assert.equal(db.get<{ n: number }>("SELECT count(*) AS n FROM t")!.n, 0);

  // The connection is fine afterwards.
  makeRoom(db);
  db.transaction(() => insert(big));
  assert.equal(db.get<{ n: number }>("SELECT count(*) AS n FROM t")!.n, 1);
});

Deno.test("Worker keeps running while the database is full, records the outcomes that fit, and the rest once space returns", async () => {
  await using tmp = await tempDatabase();
  const queue = new SqliteStorage<number>(tmp.db, "q");
  const ids = await queue.pushAll(Array.from({ length: 12 }, (_, i) => Task.builder(i).build()));
  const idOf = (n: number) => ids[n]!;
  const resultOf = (n: number) => n % 2 === 0 ? `${n}:${"r".repeat(50_000)}` : `${n}`;

  // The worker has its own connection, capped like the test's: a full disk is full for everyone.
  const workerDb = openDatabase(tmp.path);
  const events: WorkerEvent[] = [];
  const released = gate();
  const started = new Set<number>();
  const worker = new WorkerBuilder<number>("filler")
    .backend(new SqliteStorage<number>(workerDb, "q"))
    .concurrency(4)
    .handleSignals(false)
    .onEvent((_, event) => events.push(event))
    .build(async (n) => {
      started.add(n);
      await released.promise;
      return resultOf(n); // even ones need many new pages, odd ones fit in the free space
    });
  let exited = false;
  const running = worker.run().finally(() => exited = true);
  try {
    await waitUntil(() => started.size === 4, "4 handlers running");
    assert.deepEqual([...started].sort(), [0, 1, 2, 3]);
    fill(tmp.db);
    fill(workerDb);
    await assert.rejects(new SqliteStorage<string>(tmp.db, "other").push(big), isFull);
    released.open();

    // The flush that records the outcomes fails and is retried: the worker keeps going.
    const flushFailures = () =>
      events.filter((e) => e.type === "error" && e.task === undefined && isFull(e.error));
    await waitUntil(() => flushFailures().length >= 2, "two failed flushes");
    const [failure] = flushFailures();
    assert.equal(
      failure?.type === "error" && (failure.error as Error).message,
      `Cannot record outcomes and claim tasks for worker 'filler' in database '${tmp.path}': the database or disk is full`,
    );
    // Small outcomes fit and were recorded one by one; the large ones wait, still `running`.
    await waitUntil(
      () => statusOf(tmp.db, idOf(1)) === "done" && statusOf(tmp.db, idOf(3)) === "done",
      "the small outcomes recorded while the database is full",
    );
    assert.equal(statusOf(tmp.db, idOf(0)), "running");
    assert.equal(statusOf(tmp.db, idOf(2)), "running");
    assert.equal(exited, false, "the worker must not exit on a full disk");
    assert.equal(events.some((e) => e.type === "error" && e.task !== undefined), false);

    makeRoom(tmp.db);
    makeRoom(workerDb);
    const late = await queue.push(12);
    const tasks = await queue.waitFor([...ids, late], { timeoutMs: 30_000 });
    for (const task of tasks) {
      assert.equal(task.status, "done", `task ${task.args} is ${task.status}`);
      assert.equal(task.attempts, 1, `task ${task.args} ran once`);
      assert.equal(task.lastResult, resultOf(task.args));
    }
    assert.deepEqual(counts(tmp.db), { done: 13 });
  } finally {
    released.open();
    makeRoom(workerDb); // a stopping worker waits until it can record its outcomes
    await worker.stop();
    await running;
    workerDb.close();
  }
  const successes = events.filter((e) => e.type === "success").length;
  assert.equal(successes, 13, "one success event per task");
  const exit = events.at(-1);
  assert.ok(exit?.type === "exit" && exit.error === undefined, "the worker exits without error");
});

Deno.test("Worker keeps a workflow step's outcome while the database is full and records it once space returns", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "flow");
  const runId = await storage.pushStart("in");
  const runs: string[] = [];
  const released = gate();
  let entered = false;
  const flow = new Workflow<string>("big-step")
    .andThen(async (s: string) => {
      runs.push(s);
      entered = true;
      await released.promise;
      return "y".repeat(200_000); // the result and the next step's arguments need new pages
    })
    .andThen((s: string) => s.length);
  const events: WorkerEvent[] = [];
  const worker = new WorkerBuilder<string>("flow-worker")
    .backend(storage)
    .handleSignals(false)
    .onEvent((_, event) => events.push(event))
    .build(flow);
  const running = worker.run();
  try {
    await waitUntil(() => entered, "the first step running");
    fill(tmp.db);
    released.open();
    await waitUntil(
      () => events.filter((e) => e.type === "error" && isFull(e.error)).length >= 2,
      "two failed flushes",
    );
    assert.equal(
      statusOf(
        tmp.db,
        storage.db.get<{ id: string }>(
          "SELECT id FROM apalis_tasks WHERE run_id = ?",
          [runId],
        )!.id,
      ),
      "running",
    );
    makeRoom(tmp.db);
    const run = await storage.waitForRun<number>(runId, { timeoutMs: 30_000 });
    assert.equal(run.status, "done");
    assert.equal(run.result, 200_000);
    // The full disk did not turn the step into a failed attempt: it ran once, without error.
    assert.deepEqual(runs, ["in"]);
    assert.equal(run.steps.length, 2);
    assert.deepEqual(run.steps.map((step) => [step.status, step.attempts, step.error]), [
      ["done", 1, undefined],
      ["done", 1, undefined],
    ]);
  } finally {
    released.open();
    makeRoom(tmp.db);
    await worker.stop();
    await running;
  }
  assert.equal(events.some((e) => e.type === "error" && e.task !== undefined), false);
});

Deno.test("Worker.stop() on a full disk gives up the outcomes it cannot record after shutdownTimeout, and orphan rescue runs those tasks again", async () => {
  await using tmp = await tempDatabase();
  const queue = new SqliteStorage<number>(tmp.db, "q");
  const ids = await queue.pushAll([0, 1].map((n) => Task.builder(n).build()));
  const workerDb = openDatabase(tmp.path);
  const events: WorkerEvent[] = [];
  const released = gate();
  let started = 0;
  const worker = new WorkerBuilder<number>("stuck")
    .backend(new SqliteStorage<number>(workerDb, "q"))
    .concurrency(2)
    .shutdownTimeout(50)
    .handleSignals(false)
    .onEvent((_, event) => events.push(event))
    .build(async () => {
      started++;
      await released.promise;
      return "r".repeat(200_000); // needs new pages: cannot be recorded while full
    });
  const running = worker.run();
  const outcome = running.then(() => undefined, (error: unknown) => error);
  try {
    await waitUntil(() => started === 2, "2 handlers running");
    fill(tmp.db);
    fill(workerDb);
    released.open();
    await waitUntil(
      () => events.some((e) => e.type === "error" && isFull(e.error)),
      "a flush that fails on the full disk",
    );
    const stopping = Date.now();
    await worker.stop();
    const error = await outcome;
    assert.ok(Date.now() - stopping < 15_000, "stop() returned in bounded time");
    assert.ok(error instanceof WorkerFatalError, `run() rejected with ${error}`);
    assert.match(
      error.message,
      /^Worker 'stuck' stopped without recording 2 outcomes: .*full.*; their tasks stay running/,
    );
    assert.ok(isFull(error.cause));
    assert.deepEqual(ids.map((id) => statusOf(tmp.db, id)), ["running", "running"]);
  } finally {
    released.open();
    makeRoom(workerDb);
    await worker.stop();
    workerDb.close();
  }

  // Space returns; the next instance under the same name takes the tasks back and runs them.
  makeRoom(tmp.db);
  const again = new WorkerBuilder<number>("stuck")
    .backend(queue)
    .handleSignals(false)
    .build((n) => `again ${n}`);
  const rerun = again.run();
  try {
    const tasks = await queue.waitFor(ids, { timeoutMs: 30_000 });
    for (const task of tasks) {
      assert.equal(task.status, "done");
      assert.equal(task.attempts, 2, "the given-up attempt counted, then a second one ran");
      assert.equal(task.lastResult, `again ${task.args}`);
    }
  } finally {
    await again.stop();
    await rerun;
  }
});
