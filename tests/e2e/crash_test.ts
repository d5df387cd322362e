import assert from "node:assert/strict";
import { type Database, SqliteStorage, Task } from "../../mod.ts";
import { tempDatabase, waitUntil } from "../_helpers.ts";
import { assertCleanExit, type Exit, exitOf, reap, spawnWorker } from "./processes.ts";
import { assertRunsCoverTasks, column, RUNS_DDL, scalar } from "./_runs.ts";

const TIMEOUT_MS = 120_000;
const TOTAL = 2_000;

/** `kill -9`, then reaps the child (so its pid is really gone) and returns how it ended. */
async function killHard(child: Deno.ChildProcess, what: string): Promise<Exit> {
  child.kill("SIGKILL");
  return await exitOf(child, what, TIMEOUT_MS);
}

/** Pushes TOTAL tasks on `queue` and creates the runs table. */
async function seed(db: Database, queue: string): Promise<SqliteStorage<{ n: number }>> {
  db.exec(RUNS_DDL);
  const storage = new SqliteStorage<{ n: number }>(db, queue);
  await storage.pushAll(Array.from({ length: TOTAL }, (_, n) => Task.builder({ n }).build()));
  return storage;
}

/** Every task done, none left waiting, running or killed, and every id has at least one run. */
async function assertAllDone(db: Database, storage: SqliteStorage<unknown>): Promise<void> {
  const counts = await storage.stats(storage.queue);
  assert.deepEqual(
    counts,
    { pending: 0, queued: 0, running: 0, done: TOTAL, failed: 0, killed: 0, total: TOTAL },
    "every task should end done",
  );
  await assertRunsCoverTasks(db, TOTAL);
}

Deno.test("Worker.run() takes its name over and finishes every task when restarted after kill -9", async (t) => {
  await using tmp = await tempDatabase();
  const { db, path } = tmp;
  const storage = await seed(db, "crash");
  const args = ["--queue", "crash", "--concurrency", "8"];
  const children: Deno.ChildProcess[] = [];
  try {
    const first = spawnWorker(path, "crashy", [...args, "--sleep-ms", "2"]);
    children.push(first);
    await waitUntil(
      async () => (await scalar(db, "SELECT count(*) AS n FROM runs")) > 300,
      "more than 300 runs by the first 'crashy'",
      TIMEOUT_MS,
    );
    const killed = await killHard(first, "first 'crashy'");
    assert.equal(killed.signal, "SIGKILL", `first 'crashy' ended with ${killed.code}`);

    // What the dead process left behind.
    const runningAtKill = await column(
      db,
      "SELECT id FROM apalis_tasks WHERE status = 'running' AND lock_by = 'crashy' ORDER BY id",
    );
    const runsAtKill = await scalar(db, "SELECT count(*) AS n FROM runs");
    const inFlight = runningAtKill.length;
    assert.ok(inFlight > 0, "the kill should leave tasks running under 'crashy'");
    assert.ok(runsAtKill < TOTAL, "the kill should come before the queue is drained");
    const [row] = await storage.listWorkers("crash");
    assert.equal(row?.name, "crashy");
    assert.equal(row?.stoppedAt, null, "a killed worker cannot have unregistered");
    assert.equal(row?.alive, false, "a worker whose process is gone is dead on this host");

    // Same name, at once: no wait for reenqueueOrphanedAfter (5 minutes by default).
    const second = spawnWorker(path, "crashy", [...args, "--drain"]);
    children.push(second);
    assertCleanExit(await exitOf(second, "restarted 'crashy'", TIMEOUT_MS), "restarted 'crashy'");

    await assertAllDone(db, storage);
    const rows = await scalar(db, "SELECT count(*) AS n FROM runs");
    const reRuns = rows - TOTAL;
    const reRunIds = await column(
      db,
      "SELECT task_id AS id FROM runs GROUP BY task_id HAVING count(*) > 1 ORDER BY task_id",
    );
    const retriedIds = await column(
      db,
      "SELECT id FROM apalis_tasks WHERE attempts > 1 ORDER BY id",
    );
    await t.step(
      `kill -9 after ${runsAtKill} runs left ${runningAtKill.length} running (in flight or claimed ahead); ${reRuns} re-runs`,
      () => {
        assert.ok(
          reRuns <= inFlight,
          `${reRuns} re-runs, but only ${inFlight} tasks were held at the kill`,
        );
        const running = new Set(runningAtKill);
        for (const id of reRunIds) {
          assert.ok(running.has(id), `task ${id} ran twice but was not running at the kill`);
        }
        // A rescued task keeps the attempt its claim counted, whether or not it had started.
        assert.deepEqual(retriedIds, runningAtKill, "tasks that needed a second attempt");
      },
    );
  } finally {
    await reap(children);
  }
});

Deno.test("Worker heartbeat rescues a killed worker process's tasks when another worker survives", async (t) => {
  await using tmp = await tempDatabase();
  const { db, path } = tmp;
  const storage = await seed(db, "pair");
  const args = [
    "--queue",
    "pair",
    "--concurrency",
    "8",
    "--sleep-ms",
    "2",
    "--keep-alive-ms",
    "100",
  ];
  const children: Deno.ChildProcess[] = [];
  try {
    const survivor = spawnWorker(path, "survivor", [...args, "--drain"]);
    const victim = spawnWorker(path, "victim", args);
    children.push(survivor, victim);
    await waitUntil(
      async () =>
        (await scalar(db, "SELECT count(*) AS n FROM runs WHERE worker = 'victim'")) > 100 &&
        (await scalar(db, "SELECT count(*) AS n FROM runs")) > 300,
      "more than 300 runs, over 100 of them by 'victim'",
      TIMEOUT_MS,
    );
    // The survivor is frozen while the victim dies and the test reads what it left: with a
    // heartbeat every 100 ms and the victim's pid gone, it could rescue them before the read.
    Deno.kill(survivor.pid, "SIGSTOP");
    let runningAtKill: string[];
    try {
      const killed = await killHard(victim, "'victim'");
      assert.equal(killed.signal, "SIGKILL", `'victim' ended with ${killed.code}`);
      runningAtKill = await column(
        db,
        "SELECT id FROM apalis_tasks WHERE status = 'running' AND lock_by = 'victim' ORDER BY id",
      );
    } finally {
      Deno.kill(survivor.pid, "SIGCONT");
    }
    const inFlight = runningAtKill.length;
    assert.ok(inFlight > 0, "the kill should leave tasks running under 'victim'");

    // The survivor's next heartbeats see a dead pid on this host: no 5-minute wait.
    await waitUntil(
      async () =>
        (await scalar(
          db,
          "SELECT count(*) AS n FROM apalis_tasks WHERE status IN ('queued','running') AND lock_by = 'victim'",
        )) === 0,
      "the survivor to rescue the victim's tasks",
      TIMEOUT_MS,
    );
    const victimRow = (await storage.listWorkers("pair")).find((w) => w.name === "victim");
    assert.notEqual(victimRow?.stoppedAt, null, "the survivor marks the dead worker stopped");

    assertCleanExit(await exitOf(survivor, "'survivor'", TIMEOUT_MS), "'survivor'");
    await assertAllDone(db, storage);
    const reRunIds = await column(
      db,
      "SELECT task_id AS id FROM runs GROUP BY task_id HAVING count(*) > 1 ORDER BY task_id",
    );
    const finishedBySurvivor = await scalar(
      db,
      `SELECT count(*) AS n FROM apalis_tasks
       WHERE id IN (SELECT value FROM json_each(?)) AND lock_by = 'survivor'`,
      [JSON.stringify(runningAtKill)],
    );
    await t.step(
      `kill -9 left ${runningAtKill.length} running (in flight or claimed ahead) under 'victim'; ${reRunIds.length} re-runs`,
      () => {
        const running = new Set(runningAtKill);
        for (const id of reRunIds) {
          assert.ok(running.has(id), `task ${id} ran twice but was not running at the kill`);
        }
        assert.equal(
          finishedBySurvivor,
          runningAtKill.length,
          "the survivor finished every task the victim was running",
        );
      },
    );
  } finally {
    await reap(children);
  }
});

Deno.test("Worker.run() shuts down gracefully on SIGTERM: tasks claimed ahead released, none left running", async () => {
  await using temp = await tempDatabase();
  const storage = await seed(temp.db, "sigterm");
  // Concurrency 2, tasks of 2 ms: the worker claims about 10 ahead of its 2 slots.
  const child = spawnWorker(temp.path, "graceful", [
    "--queue",
    "sigterm",
    "--concurrency",
    "2",
    "--sleep-ms",
    "2",
  ]);
  try {
    await waitUntil(
      async () =>
        (await scalar(temp.db, "SELECT count(*) AS n FROM runs")) >= 10 &&
        (await storage.stats("sigterm")).running > 2,
      "the worker to hold tasks ahead of its slots",
      TIMEOUT_MS,
    );
    child.kill("SIGTERM");
    assertCleanExit(await exitOf(child, "the SIGTERM'd worker", TIMEOUT_MS), "the worker");
  } finally {
    await reap([child]);
  }
  const counts = await storage.stats("sigterm");
  assert.equal(counts.queued, 0);
  assert.equal(counts.running, 0, "in-flight tasks finish before the exit");
  assert.equal(counts.failed + counts.killed, 0, "no task is failed by a graceful shutdown");
  assert.equal(counts.done + counts.pending, TOTAL);
  assert.ok(counts.pending > 0, "the shutdown came before the queue drained");
  assert.equal(
    await scalar(
      temp.db,
      "SELECT count(*) AS n FROM apalis_tasks WHERE status = 'pending' AND attempts > 0",
    ),
    0,
    "tasks claimed ahead go back to pending with their attempt given back",
  );
  const done = await scalar(temp.db, "SELECT count(DISTINCT task_id) AS n FROM runs");
  assert.equal(done, counts.done, "every task that ran finished (done), none was cut short");
  const [worker] = await storage.listWorkers("sigterm");
  assert.ok(worker && worker.stoppedAt !== null && !worker.alive, "the worker row is stopped");
});
