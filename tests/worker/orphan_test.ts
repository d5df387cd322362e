import assert from "node:assert/strict";
import { hostname } from "node:os";
import {
  Config,
  type Database,
  SqliteStorage,
  WorkerBuilder,
  WorkerNameTakenError,
} from "../../mod.ts";
import { FakeClock, tempDatabase, waitUntil } from "../_helpers.ts";

function countRunning(db: Database): number {
  return db.get<{ n: number }>("SELECT count(*) AS n FROM apalis_tasks WHERE status = 'running'")!
    .n;
}

/** Registers a worker row by hand, as a process that has since died would have left it. */
function insertWorker(
  db: Database,
  row: { name: string; queue: string; host: string; pid: number; lastSeen: number },
): void {
  db.run(
    `INSERT INTO apalis_workers
       (name, queue, instance_id, host, pid, started_at, last_seen, stopped_at, concurrency)
     VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 1)`,
    [
      row.name,
      row.queue,
      `instance-of-${row.name}`,
      row.host,
      row.pid,
      row.lastSeen,
      row.lastSeen,
    ],
  );
}

/** Puts a pushed task in the state a worker would have left it in. */
function holdTask(
  db: Database,
  id: string,
  state: { status: "queued" | "running"; by: string; attempts?: number; maxAttempts?: number },
  lockAt: number,
): void {
  const changed = db.run(
    `UPDATE apalis_tasks SET status = ?, lock_by = ?, lock_at = ?,
       attempts = coalesce(?, attempts), max_attempts = coalesce(?, max_attempts)
     WHERE id = ?`,
    [state.status, state.by, lockAt, state.attempts ?? null, state.maxAttempts ?? null, id],
  ).changes;
  assert.equal(changed, 1);
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = new Deno.Command("true", { stdout: "null", stderr: "null" }).spawn();
  await child.status;
  return child.pid;
}

function workerRow(
  db: Database,
  name: string,
): { stopped_at: number | null; pid: number; host: string } | undefined {
  return db.get("SELECT stopped_at, pid, host FROM apalis_workers WHERE name = ?", [name]);
}

Deno.test("Worker.run() rescues the tasks of a worker whose heartbeat went stale", async () => {
  await using tmp = await tempDatabase();
  const config = new Config("orphans").setKeepAlive(50).setReenqueueOrphanedAfter(1000);
  const storage = new SqliteStorage<string>(tmp.db, config);
  const now = Date.now();
  insertWorker(tmp.db, {
    name: "ghost",
    queue: "orphans",
    host: "another-host",
    pid: 1,
    lastSeen: now - 3_600_000,
  });
  const queued = await storage.push("queued", { maxAttempts: 5 });
  const running = await storage.push("running", { maxAttempts: 5 });
  const exhausted = await storage.push("exhausted", { maxAttempts: 5 });
  holdTask(tmp.db, queued, { status: "queued", by: "ghost" }, now - 3_600_000);
  holdTask(tmp.db, running, { status: "running", by: "ghost", attempts: 1 }, now - 3_600_000);
  holdTask(
    tmp.db,
    exhausted,
    { status: "running", by: "ghost", attempts: 5, maxAttempts: 5 },
    now - 3_600_000,
  );
  let rescued = 0;
  const handled: string[] = [];
  const worker = new WorkerBuilder("rescuer")
    .backend(storage)
    .handleSignals(false)
    .onEvent((_ctx, event) => {
      if (event.type === "heartbeat") rescued += event.rescued;
    })
    .build((args, ctx) => {
      handled.push(args);
      return `${args} on attempt ${ctx.attempt}`;
    });
  const run = worker.run();
  const [queuedTask, runningTask, exhaustedTask] = await storage.waitFor(
    [queued, running, exhausted],
    { timeoutMs: 10_000 },
  );
  await worker.stop();
  await run;

  assert.equal(rescued, 3);
  assert.deepEqual(handled.sort(), ["queued", "running"]);
  assert.equal(queuedTask?.status, "done");
  assert.equal(queuedTask?.attempts, 1);
  assert.equal(queuedTask?.lastResult, "queued on attempt 1");
  assert.equal(runningTask?.status, "done");
  assert.equal(runningTask?.attempts, 2, "the interrupted attempt stays counted");
  assert.equal(runningTask?.lastResult, "running on attempt 2");
  assert.equal(exhaustedTask?.status, "killed");
  assert.equal(exhaustedTask?.attempts, 5);
  assert.equal(exhaustedTask?.lastError?.name, "WorkerLostError");
  assert.notEqual(exhaustedTask?.doneAt, null);
  assert.notEqual(workerRow(tmp.db, "ghost")?.stopped_at, null);
  const ghost = (await storage.listWorkers()).find((w) => w.name === "ghost");
  assert.equal(ghost?.alive, false);
  assert.equal(countRunning(tmp.db), 0);
});

Deno.test("Worker.run() waits for reenqueueOrphanedAfter before rescuing a silent worker on another host", async () => {
  await using tmp = await tempDatabase();
  const clock = new FakeClock();
  const config = new Config("patient").setKeepAlive(10).setReenqueueOrphanedAfter(1000)
    .withPollInterval(10);
  const storage = new SqliteStorage<string>(tmp.db, config, { clock });
  insertWorker(tmp.db, {
    name: "silent",
    queue: "patient",
    host: "another-host",
    pid: 1,
    lastSeen: clock.now(),
  });
  const id = await storage.push("held");
  holdTask(tmp.db, id, { status: "running", by: "silent", attempts: 1 }, clock.now());
  let heartbeats = 0;
  const worker = new WorkerBuilder("patient-worker")
    .backend(storage)
    .handleSignals(false)
    .onEvent((_ctx, event) => {
      if (event.type === "heartbeat") heartbeats++;
    })
    .build((args) => args);
  const run = worker.run();
  await waitUntil(() => heartbeats >= 5, "five heartbeats");
  const held = await storage.fetchById(id);
  assert.equal(held?.status, "running", "a worker within its threshold keeps its task");
  assert.equal(held?.lockBy, "silent");
  assert.equal(workerRow(tmp.db, "silent")?.stopped_at, null);

  clock.advance(999);
  const seen = heartbeats;
  await waitUntil(() => heartbeats >= seen + 3, "three more heartbeats");
  assert.equal((await storage.fetchById(id))?.status, "running", "999 ms of silence is not enough");

  clock.advance(1);
  const [task] = await storage.waitFor(id, { timeoutMs: 10_000 });
  await worker.stop();
  await run;

  assert.equal(task?.status, "done");
  assert.equal(task?.attempts, 2);
  assert.equal(workerRow(tmp.db, "silent")?.stopped_at, clock.now());
  assert.equal(countRunning(tmp.db), 0);
});

Deno.test("Worker.run() rescues at once the tasks of a worker on this host whose process is gone", async () => {
  await using tmp = await tempDatabase();
  // A threshold far longer than the test: only the dead pid can explain a rescue.
  const config = new Config("same-host").setKeepAlive(50).setReenqueueOrphanedAfter(3_600_000);
  const storage = new SqliteStorage<string>(tmp.db, config);
  const pid = await deadPid();
  const now = Date.now();
  insertWorker(tmp.db, {
    name: "crashed",
    queue: "same-host",
    host: hostname(),
    pid,
    lastSeen: now,
  });
  const queued = await storage.push("queued");
  const running = await storage.push("running");
  holdTask(tmp.db, queued, { status: "queued", by: "crashed" }, now);
  holdTask(tmp.db, running, { status: "running", by: "crashed", attempts: 1 }, now);
  const worker = new WorkerBuilder("survivor")
    .backend(storage)
    .handleSignals(false)
    .build((args) => args.toUpperCase());
  const run = worker.run();
  const [queuedTask, runningTask] = await storage.waitFor([queued, running], {
    timeoutMs: 10_000,
  });
  await worker.stop();
  await run;

  assert.equal(queuedTask?.status, "done");
  assert.equal(queuedTask?.lastResult, "QUEUED");
  assert.equal(runningTask?.status, "done");
  assert.equal(runningTask?.attempts, 2);
  assert.notEqual(workerRow(tmp.db, "crashed")?.stopped_at, null);
  assert.equal(countRunning(tmp.db), 0);
});

Deno.test("Worker.run() rejects with WorkerNameTakenError when the name's instance is alive", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "names");
  const first = new WorkerBuilder("unique").backend(storage).handleSignals(false).build((n) =>
    n + 1
  );
  let started = false;
  const firstRun = first.run();
  const second = new WorkerBuilder("unique")
    .backend(storage)
    .handleSignals(false)
    .onEvent((_ctx, event) => {
      if (event.type === "start") started = true;
    })
    .build((n) => n - 1);
  await assert.rejects(second.run(), (error: unknown) => {
    assert.ok(error instanceof WorkerNameTakenError);
    assert.match(error.message, /unique/);
    assert.match(error.message, new RegExp(`pid ${Deno.pid}`));
    return true;
  });
  assert.equal(started, false, "the refused worker never started");

  // The live instance is untouched and keeps working.
  const id = await storage.push(1);
  const [task] = await storage.waitFor(id, { timeoutMs: 10_000 });
  assert.equal(task?.lastResult, 2);
  const [info] = await storage.listWorkers("names");
  assert.equal(info?.stoppedAt, null);
  assert.equal(info?.alive, true);
  await first.stop();
  await firstRun;

  // Once it stopped, the name is free again.
  const third = new WorkerBuilder("unique").backend(storage).handleSignals(false).build((n) =>
    n * 3
  );
  const thirdRun = third.run();
  const id3 = await storage.push(5);
  const [task3] = await storage.waitFor(id3, { timeoutMs: 10_000 });
  assert.equal(task3?.lastResult, 15);
  await third.stop();
  await thirdRun;
});

Deno.test("Worker.run() takes over the name of a dead instance on this host and first rescues its tasks", async () => {
  await using tmp = await tempDatabase();
  // Long threshold: the heartbeat's orphan rescue skips tasks held by a live name, so only the
  // takeover at registration can bring these back.
  const config = new Config("phoenix").setKeepAlive(50).setReenqueueOrphanedAfter(3_600_000);
  const storage = new SqliteStorage<string>(tmp.db, config);
  const pid = await deadPid();
  const now = Date.now();
  insertWorker(tmp.db, { name: "phoenix", queue: "phoenix", host: hostname(), pid, lastSeen: now });
  const queued = await storage.push("queued");
  const running = await storage.push("running");
  const exhausted = await storage.push("exhausted", { maxAttempts: 2 });
  holdTask(tmp.db, queued, { status: "queued", by: "phoenix" }, now);
  holdTask(tmp.db, running, { status: "running", by: "phoenix", attempts: 1 }, now);
  holdTask(tmp.db, exhausted, { status: "running", by: "phoenix", attempts: 2 }, now);
  const handled: string[] = [];
  const worker = new WorkerBuilder("phoenix")
    .backend(storage)
    .handleSignals(false)
    .build((args, ctx) => {
      handled.push(args);
      return ctx.attempt;
    });
  const run = worker.run();
  const [queuedTask, runningTask, exhaustedTask] = await storage.waitFor(
    [queued, running, exhausted],
    { timeoutMs: 10_000 },
  );
  const row = workerRow(tmp.db, "phoenix");
  assert.equal(row?.pid, Deno.pid, "the new instance owns the name");
  assert.equal(row?.stopped_at, null);
  await worker.stop();
  await run;

  assert.deepEqual(handled.sort(), ["queued", "running"]);
  assert.equal(queuedTask?.status, "done");
  assert.equal(queuedTask?.lastResult, 1);
  assert.equal(runningTask?.status, "done");
  assert.equal(runningTask?.attempts, 2);
  assert.equal(runningTask?.lastResult, 2);
  assert.equal(exhaustedTask?.status, "killed");
  assert.equal(exhaustedTask?.lastError?.name, "WorkerLostError");
  assert.notEqual(workerRow(tmp.db, "phoenix")?.stopped_at, null);
  assert.equal(countRunning(tmp.db), 0);
});
