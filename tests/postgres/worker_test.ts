import assert from "node:assert/strict";
import { hostname } from "node:os";
import {
  AbortError,
  Config,
  KilledError,
  Task,
  type TaskRecord,
  TaskTimeoutError,
  type Worker,
  WorkerBuilder,
  type WorkerEvent,
} from "../../mod.ts";
import { type PostgresConnection, PostgresStorage } from "../../postgres.ts";
import { gate } from "../_helpers.ts";
import { pgTest, tempPostgres } from "../_postgres.ts";

/** Runs `worker` until every one of `ids` has finished, then stops it. */
async function drain<T>(
  worker: Worker<T>,
  storage: PostgresStorage<T>,
  ids: readonly string[],
): Promise<TaskRecord<T>[]> {
  const running = worker.run();
  try {
    return await storage.waitFor(ids, { timeoutMs: 15_000 });
  } finally {
    await worker.stop();
    await running;
  }
}

pgTest(
  "a worker on PostgreSQL retries with the persisted backoff, kills on AbortError, and times out a slow attempt",
  async () => {
    await using db = await tempPostgres();
    const storage = new PostgresStorage<string>(db.pg, "jobs");
    const flaky = await storage.push("flaky", { maxAttempts: 3 });
    const aborting = await storage.push("abort", { maxAttempts: 5 });
    const slow = await storage.push("slow", { maxAttempts: 1 });
    const observed: { attempt: number; runAt: number; doneAt: number | null }[] = [];
    const worker = new WorkerBuilder("retrier")
      .backend(storage)
      .concurrency(3)
      .timeout(300)
      .retry({ backoff: { initialMs: 150, factor: 1, jitter: 0 } })
      .handleSignals(false)
      .build(async (kind, ctx) => {
        if (kind === "flaky") {
          const [row] = await db.pg.sql<{ run_at: number; done_at: number | null }[]>`
          SELECT run_at, done_at FROM apalis_tasks WHERE id = ${ctx.taskId}`;
          observed.push({ attempt: ctx.attempt, runAt: row!.run_at, doneAt: row!.done_at });
          if (ctx.attempt < 3) throw new Error(`attempt ${ctx.attempt} fails`);
          return "third time";
        }
        if (kind === "abort") throw new AbortError("no point retrying");
        await new Promise((resolve) => setTimeout(resolve, 2000));
      });
    const [a, b, c] = await drain(worker, storage, [flaky, aborting, slow]);
    assert.equal(a!.status, "done");
    assert.equal(a!.attempts, 3);
    assert.equal(a!.lastResult, "third time");
    // Attempts 2 and 3 see the failed attempt's row: due 150 ms after it finished.
    assert.deepEqual(observed.map((o) => o.attempt), [1, 2, 3]);
    for (const o of observed.slice(1)) assert.equal(o.runAt - o.doneAt!, 150);
    assert.equal(b!.status, "killed");
    assert.equal(b!.attempts, 1);
    assert.equal(b!.lastError?.name, "AbortError");
    assert.equal(c!.status, "killed");
    assert.equal(c!.lastError?.name, new TaskTimeoutError(300).name);
    const stats = await storage.throughput({ minutes: 5 });
    const total = stats.reduce(
      (sum, p) => ({
        done: sum.done + p.done,
        failed: sum.failed + p.failed,
        killed: sum.killed + p.killed,
      }),
      { done: 0, failed: 0, killed: 0 },
    );
    assert.deepEqual(total, { done: 1, failed: 2, killed: 2 });
  },
);

pgTest(
  "a worker on PostgreSQL runs higher priorities first and a delayed task only when due",
  async () => {
    await using db = await tempPostgres();
    const storage = new PostgresStorage<string>(db.pg, "order");
    const ids = await storage.pushAll([
      Task.builder("low").priority(0).build(),
      Task.builder("high").priority(5).build(),
      Task.builder("mid").priority(1).build(),
      Task.builder("delayed").priority(10).runAfter(400).build(),
    ]);
    const pushedAt = Date.now();
    const order: [string, number][] = [];
    const worker = new WorkerBuilder("orderly")
      .backend(storage)
      .concurrency(1)
      .handleSignals(false)
      .build((name) => void order.push([name, Date.now() - pushedAt]));
    await drain(worker, storage, ids);
    assert.deepEqual(order.map(([name]) => name), ["high", "mid", "low", "delayed"]);
    assert.ok(order[3]![1] >= 390, `the delayed task started after ${order[3]![1]} ms`);
  },
);

pgTest(
  "a kill by hand on PostgreSQL in the same process aborts the running attempt at once: its outcome is discarded",
  async () => {
    await using db = await tempPostgres();
    const storage = new PostgresStorage<string>(db.pg, "kill");
    const id = await storage.push("long");
    const started = gate();
    const release = gate();
    const events: WorkerEvent[] = [];
    const worker = new WorkerBuilder("killable")
      .backend(storage)
      .handleSignals(false)
      .onEvent((_ctx, event) => void events.push(event))
      .build(async () => {
        started.open();
        await release.promise;
        return "finished anyway";
      });
    const running = worker.run();
    await started.promise;
    const killed = await PostgresStorage.admin(db.pg).kill(id, "operator said so");
    assert.equal(killed.status, "killed");
    assert.ok(
      events.some((e) => e.type === "error" && e.error instanceof KilledError),
      "the kill is reported when it commits",
    );
    release.open();
    await worker.stop();
    assert.equal(events.some((e) => e.type === "success"), false, "the late outcome is discarded");
    await running;
    const task = await storage.fetchById(id);
    assert.equal(task?.status, "killed");
    assert.equal(task?.lastResult, undefined);
  },
);

/** Registers a worker row as a process on `host` would have (time: the server's, minus `ageMs`). */
async function insertWorker(
  pg: PostgresConnection,
  row: { name: string; host: string; pid: number; ageMs: number },
): Promise<void> {
  await pg.sql`
    INSERT INTO apalis_workers
      (name, queue, instance_id, host, pid, started_at, last_seen, stopped_at, concurrency)
    VALUES (${row.name}, 'rescue', ${`instance-of-${row.name}`}, ${row.host}, ${row.pid},
      apalis_now() - ${row.ageMs}::bigint, apalis_now() - ${row.ageMs}::bigint, NULL, 1)`;
}

async function hold(
  pg: PostgresConnection,
  id: string,
  state: { status: "queued" | "running"; by: string; attempts: number; maxAttempts: number },
): Promise<void> {
  const result = await pg.sql`
    UPDATE apalis_tasks SET status = ${state.status}, lock_by = ${state.by},
      lock_at = apalis_now(), attempts = ${state.attempts}, max_attempts = ${state.maxAttempts}
    WHERE id = ${id}`;
  assert.equal(result.count, 1);
}

pgTest(
  "orphan rescue on PostgreSQL works across hosts by heartbeat age alone: a stale worker's tasks run again, a fresh one's stay",
  async () => {
    await using db = await tempPostgres();
    const storage = new PostgresStorage<string>(
      db.pg,
      new Config("rescue").setReenqueueOrphanedAfter(5_000).setKeepAlive(200),
    );
    const [retried, lastAttempt, buffered, fresh] = await storage.pushAll([
      Task.builder("retried").build(),
      Task.builder("last").build(),
      Task.builder("buffered").build(),
      Task.builder("fresh").build(),
    ]);
    // A worker on another host whose heartbeat is a minute old: dead.
    await insertWorker(db.pg, { name: "stale@host-b", host: "host-b", pid: 4242, ageMs: 60_000 });
    await hold(db.pg, retried!, {
      status: "running",
      by: "stale@host-b",
      attempts: 1,
      maxAttempts: 3,
    });
    await hold(db.pg, lastAttempt!, {
      status: "running",
      by: "stale@host-b",
      attempts: 2,
      maxAttempts: 2,
    });
    await hold(db.pg, buffered!, {
      status: "queued",
      by: "stale@host-b",
      attempts: 0,
      maxAttempts: 3,
    });
    // A worker that heart-beat a second ago, said to be on this host with a pid that does not
    // exist here: on PostgreSQL a pid proves nothing (it may be another machine's), so it lives.
    await insertWorker(db.pg, { name: "fresh@here", host: hostname(), pid: 999_999, ageMs: 1000 });
    await hold(db.pg, fresh!, { status: "running", by: "fresh@here", attempts: 1, maxAttempts: 3 });

    const ran: string[] = [];
    let rescued = 0;
    const worker = new WorkerBuilder("rescuer")
      .backend(storage)
      .handleSignals(false)
      .onEvent((_ctx, event) => {
        if (event.type === "heartbeat") rescued += event.rescued;
      })
      .build((name) => void ran.push(name));
    const running = worker.run();
    try {
      await storage.waitFor([retried!, lastAttempt!, buffered!], { timeoutMs: 10_000 });
    } finally {
      await worker.stop();
      await running;
    }
    assert.equal(rescued, 3);
    assert.deepEqual(ran.sort(), ["buffered", "retried"]);
    const last = await storage.fetchById(lastAttempt!);
    assert.equal(last?.status, "killed");
    assert.equal(last?.lastError?.name, "WorkerLostError");
    assert.equal((await storage.fetchById(retried!))?.attempts, 2);
    assert.equal((await storage.fetchById(fresh!))?.status, "running", "the live worker's task");
    const workers = await storage.listWorkers();
    const alive = Object.fromEntries(workers.map((w) => [w.name, w.alive]));
    assert.deepEqual(alive, { "fresh@here": true, "rescuer": false, "stale@host-b": false });
  },
);
