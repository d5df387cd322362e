/**
 * Conformance: orphan rescue by heartbeat age. A worker whose heartbeat is older than
 * `reenqueueOrphanedAfter` is dead, even while its process lives (on PostgreSQL the heartbeat is
 * all there is): another worker's heartbeat gives its tasks back, kills the one on its last
 * attempt, and the dead worker's late outcomes are discarded.
 *
 * Two clocks stand for two hosts: worker A's stands still (its heartbeats keep saying t0),
 * worker B's runs ahead.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Config, WorkerBuilder } from "../../mod.ts";
import {
  assertNoneHeld,
  backendTest,
  eventLog,
  FakeClock,
  gate,
  start,
  taskErrors,
  waitUntil,
} from "./_suite.ts";

backendTest(
  "Worker heartbeat rescues the tasks of a worker whose heartbeat went stale, kills the one on its last attempt, and the stale worker's late outcomes are discarded",
  async (db) => {
    const t0 = Date.UTC(2026, 0, 1);
    const clockA = new FakeClock(t0);
    const clockB = new FakeClock(t0 + 999);
    // A beats once, at its start; B every 10 ms. Both call a worker dead after 1 s of silence.
    const quiet = new Config("orphans").setKeepAlive(3_600_000).setReenqueueOrphanedAfter(1_000)
      .withPollInterval(5);
    const watchful = quiet.setKeepAlive(10);
    const storageA = db.storage<string>(quiet, { clock: clockA });
    const storageB = db.storage<string>(watchful, { clock: clockB });
    const spare = await storageA.push("spare", { maxAttempts: 3 });
    const last = await storageA.push("last", { maxAttempts: 1 });

    const release = gate();
    const startedA: string[] = [];
    const logA = eventLog();
    const workerA = new WorkerBuilder("stale")
      .backend(storageA)
      .concurrency(2)
      .handleSignals(false)
      .onEvent(logA.listener)
      .build(async (name) => {
        startedA.push(name);
        await release.promise;
        return `A:${name}`;
      });
    await using runningA = start(workerA);
    await waitUntil(() => startedA.length === 2, "worker A to start both tasks");

    let rescued = 0;
    let heartbeats = 0;
    const ranB: string[] = [];
    const workerB = new WorkerBuilder("rescuer")
      .backend(storageB)
      .handleSignals(false)
      .onEvent((_ctx, event) => {
        if (event.type !== "heartbeat") return;
        heartbeats++;
        rescued += event.rescued;
      })
      .build((name, ctx) => {
        ranB.push(name);
        return `B:${name}:${ctx.attempt}`;
      });
    await using runningB = start(workerB);
    await waitUntil(() => heartbeats >= 5, "five heartbeats of worker B");
    for (const id of [spare, last]) {
      const held = await storageB.fetchById(id);
      assert.deepEqual([held?.status, held?.lockBy], ["running", "stale"], "999 ms of silence");
    }
    const before = (await storageB.listWorkers("orphans")).find((w) => w.name === "stale");
    assert.equal(before?.alive, true, "a heartbeat 999 ms old is alive");
    assert.equal(rescued, 0);

    clockB.advance(1);
    const [spareTask, lastTask] = await storageB.waitFor([spare, last], { timeoutMs: 10_000 });
    assert.equal(rescued, 2, "both tasks rescued");
    assert.deepEqual(ranB, ["spare"]);
    assert.equal(spareTask?.status, "done");
    assert.equal(spareTask?.attempts, 2, "the interrupted attempt stays counted");
    assert.equal(spareTask?.lastResult, "B:spare:2");
    assert.equal(lastTask?.status, "killed");
    assert.equal(lastTask?.attempts, 1);
    assert.equal(lastTask?.lastError?.name, "WorkerLostError");
    const after = (await storageB.listWorkers("orphans")).find((w) => w.name === "stale");
    assert.equal(after?.alive, false);
    assert.notEqual(after?.stoppedAt, null, "the rescuer marks the stale worker stopped");

    // A's handlers finish now: both outcomes are fenced off.
    release.open();
    await waitUntil(() => taskErrors(logA.events).length === 2, "A's late outcomes to be reported");
    await runningA.stop();
    await runningB.stop();
    assert.equal(logA.events.some((e) => e.type === "success"), false);
    for (const error of taskErrors(logA.events)) {
      assert.match(String((error.error as Error).message), /discarded/);
    }
    const [spareAfter, lastAfter] = await storageB.waitFor([spare, last]);
    assert.equal(spareAfter?.lastResult, "B:spare:2", "A's late result did not overwrite B's");
    assert.equal(lastAfter?.status, "killed");
    assert.equal(lastAfter?.lastResult, undefined);
    const outcomes = (await db.admin({ clock: clockB }).throughput({ queue: "orphans" }))
      .reduce((sum, p) => [sum[0]! + p.done, sum[1]! + p.failed, sum[2]! + p.killed], [0, 0, 0]);
    assert.deepEqual(outcomes, [1, 0, 1], "[done, failed, killed]: the rescue's kill counts");
    await assertNoneHeld(db.admin());
  },
);
