/**
 * Conformance: retention. A queue's running workers delete its finished tasks once they are
 * older than the queue's retention (`Config.setRetention`; by default `done` 7 days, `killed`
 * 30 days), in batches, one holder of the queue's lease at a time; tasks of a workflow run go
 * only with their whole run, once it has finished and all its tasks have expired; `vacuum`
 * treats runs the same way. Time is a fake clock on both backends (operations take the
 * storage's time), so ages are exact.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  Config,
  type RetentionOptions,
  type Storage,
  Task,
  type UniqueOptions,
  WorkerBuilder,
  type WorkerEvent,
  Workflow,
} from "../../mod.ts";
import { RETENTION_LEASE_MS, retentionPass } from "../../lib/worker/retention_sweeper.ts";
import { backendTest, eventLog, FakeClock, start, type TestDatabase, waitUntil } from "./_suite.ts";

const DAY = 86_400_000;
const KEEP = { done: "forever", killed: "forever" } as const;

/** The queue with `retention`, and the same queue kept forever (for the workers that fill it). */
function queueOf(db: TestDatabase, clock: FakeClock, queue: string, retention: RetentionOptions) {
  const config = new Config(queue).withPollInterval(5);
  return {
    storage: db.storage<number>(config.setRetention(retention), { clock }),
    filler: db.storage<number>(config.setRetention(KEEP), { clock }),
  };
}

/** Runs the pushed tasks `ids` to `done` with a worker whose queue keeps everything. */
async function finish(storage: Storage<number>, ids: readonly string[]): Promise<void> {
  const worker = new WorkerBuilder(`filler-${crypto.randomUUID()}`).backend(storage)
    .handleSignals(false).build((n) => n);
  await using _running = start(worker);
  await storage.waitFor(ids, { timeoutMs: 10_000 });
}

async function pushMany(storage: Storage<number>, n: number): Promise<string[]> {
  return await storage.pushAll(Array.from({ length: n }, (_, i) => new Task(i)));
}

async function killMany(storage: Storage<number>, n: number): Promise<string[]> {
  const ids = await pushMany(storage, n);
  for (const id of ids) await storage.kill(id);
  return ids;
}

/** The ids of `ids` that still exist. */
async function existing(storage: Storage<number>, ids: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  for (const id of ids) if (await storage.fetchById(id)) found.push(id);
  return found;
}

backendTest("retention keeps done tasks 7 days and killed ones 30 days by default", async (db) => {
  assert.deepEqual(
    { ...new Config("q").retention },
    { doneMs: 7 * DAY, killedMs: 30 * DAY, everyMs: 60_000, batchSize: 1000 },
  );
  const clock = new FakeClock();
  const { storage, filler } = queueOf(db, clock, "defaults", {});
  const oldDone = await pushMany(filler, 4);
  await finish(filler, oldDone);
  const oldKilled = await killMany(filler, 3);
  clock.advance(DAY);
  const newDone = await pushMany(filler, 2);
  await finish(filler, newDone);
  const newKilled = await killMany(filler, 2);
  const waiting = await filler.push(7, { runAfter: 365 * DAY });

  clock.advance(6 * DAY - 1); // the old ones are 7 days old less 1 ms
  assert.deepEqual(await retentionPass(storage, "me"), {
    tasks: 0,
    runs: 0,
    batches: 0,
    leased: false,
  });
  clock.advance(1);
  assert.equal((await retentionPass(storage, "me")).tasks, oldDone.length);
  assert.deepEqual(await existing(storage, oldDone), []);
  assert.equal((await existing(storage, [...oldKilled, ...newDone, ...newKilled])).length, 7);

  clock.advance(23 * DAY); // old killed 30 days old; new done 29 days, new killed 29 days
  assert.equal((await retentionPass(storage, "me")).tasks, oldKilled.length + newDone.length);
  assert.deepEqual(await existing(storage, [...oldKilled, ...newDone]), []);
  assert.deepEqual(await existing(storage, [...newKilled, waiting]), [...newKilled, waiting]);
  clock.advance(DAY);
  assert.equal((await retentionPass(storage, "me")).tasks, newKilled.length);
  assert.deepEqual(await existing(storage, [waiting]), [waiting], "waiting tasks never go");
  const counts = await storage.stats("defaults");
  assert.deepEqual([counts.total, counts.pending], [1, 1]);
});

backendTest(
  "a running worker applies its queue's retention and emits an event per batch",
  async (db) => {
    const clock = new FakeClock();
    const { storage, filler } = queueOf(db, clock, "worker", { done: "1h", every: 10 });
    const done = await pushMany(filler, 5);
    await finish(filler, done);
    const killed = await killMany(filler, 2);
    clock.advance(3_600_000);

    const log = eventLog();
    const worker = new WorkerBuilder("sweeper").backend(storage).handleSignals(false)
      .onEvent(log.listener).build((n) => n);
    await using _running = start(worker);
    await waitUntil(async () => (await existing(storage, done)).length === 0, "done tasks to go");
    const events = log.events.filter((e): e is Extract<WorkerEvent, { type: "retention" }> =>
      e.type === "retention"
    );
    assert.equal(events.reduce((sum, e) => sum + e.tasks, 0), done.length);
    for (const event of events) {
      assert.equal(event.queue, "worker");
      assert.equal(event.runs, 0);
      assert.ok(event.heldFrom <= event.heldTo, JSON.stringify(event));
    }
    assert.deepEqual(await existing(storage, killed), killed, "killed tasks are kept 30 days");
  },
);

backendTest("retention ages per status: forever keeps, 0 deletes at the next pass", async (db) => {
  const clock = new FakeClock();
  const keepKilled = queueOf(db, clock, "per-status", { done: "2h", killed: "forever" });
  const done = await pushMany(keepKilled.filler, 3);
  await finish(keepKilled.filler, done);
  const killed = await killMany(keepKilled.filler, 3);
  clock.advance(2 * 3_600_000 - 1);
  assert.equal((await retentionPass(keepKilled.storage, "me")).tasks, 0);
  clock.advance(1);
  assert.equal((await retentionPass(keepKilled.storage, "me")).tasks, 3);
  clock.advance(10 * 365 * DAY);
  assert.equal((await retentionPass(keepKilled.storage, "me")).tasks, 0);
  assert.deepEqual(await existing(keepKilled.storage, killed), killed);

  const dropKilled = queueOf(db, clock, "per-status", { done: Infinity, killed: 0 });
  assert.equal((await retentionPass(dropKilled.storage, "me")).tasks, 3, "killed ones at once");
  assert.deepEqual(await existing(dropKilled.storage, killed), []);

  // Another queue's tasks are not this queue's business.
  const other = queueOf(db, clock, "other", KEEP);
  const others = await killMany(other.filler, 2);
  assert.equal((await retentionPass(dropKilled.storage, "me")).tasks, 0);
  assert.deepEqual(await existing(other.storage, others), others);
});

backendTest("retention deletes in batches of batchSize, one transaction each", async (db) => {
  const clock = new FakeClock();
  const { storage, filler } = queueOf(db, clock, "batches", { done: 0, killed: 0, batchSize: 10 });
  const done = await pushMany(filler, 23);
  await finish(filler, done);
  const killed = await killMany(filler, 4);
  const batches: number[] = [];
  const outcome = await retentionPass(storage, "me", {
    onDeleted: (event) => batches.push(event.tasks),
  });
  assert.deepEqual(batches, [10, 10, 3, 4], "done tasks in batches of 10, then killed ones");
  assert.deepEqual(outcome, { tasks: 27, runs: 0, batches: 4, leased: false });
  assert.deepEqual(await existing(storage, [...done, ...killed]), []);
});

backendTest("one holder at a time: the retention lease of a queue", async (db) => {
  const clock = new FakeClock();
  const { storage, filler } = queueOf(db, clock, "lease", { done: 0, batchSize: 5, every: 1000 });
  const step = (holder: string, after?: { phase: "done"; after: string }) =>
    storage.backend.retentionStep({
      queue: "lease",
      holder,
      leaseMs: 10_000,
      doneMs: 0,
      killedMs: null,
      batchSize: 5,
      now: clock.now(),
      ...(after ? { after } : {}),
    });
  const done = await pushMany(filler, 20);
  await finish(filler, done);

  const first = await step("a");
  assert.equal(first.outcome, "deleted");
  assert.equal(first.tasks, 5);
  assert.deepEqual(await step("b"), { outcome: "leased", tasks: 0, runs: 0, next: null });
  // A step of another holder in the middle of its own pass deletes nothing either.
  const midPass = await step("b", { phase: "done", after: "" });
  assert.deepEqual([midPass.outcome, midPass.tasks], ["leased", 0]);
  assert.equal((await step("a", first.next as { phase: "done"; after: string })).tasks, 5);

  clock.advance(10_000); // a's lease expired: b takes it over
  const takeover = await step("b", { phase: "done", after: "" });
  assert.deepEqual([takeover.outcome, takeover.tasks], ["deleted", 5]);
  assert.equal((await step("a", { phase: "done", after: "" })).outcome, "leased");

  // A whole pass keeps the others away for `every`; a release after a stop does not.
  await storage.backend.retentionRelease({
    queue: "lease",
    holder: "b",
    nextInMs: 0,
    now: clock.now(),
  });
  assert.deepEqual(await retentionPass(storage, "a"), {
    tasks: 5,
    runs: 0,
    batches: 1,
    leased: false,
  });
  assert.equal((await retentionPass(storage, "b")).leased, true);
  clock.advance(1000);
  assert.equal((await retentionPass(storage, "b")).leased, false);
  assert.deepEqual(await existing(storage, done), []);
  assert.ok(RETENTION_LEASE_MS >= 60_000, "a crashed holder's lease lasts a while, not forever");
});

backendTest(
  "retention deletes a workflow run whole, once it has finished and all its tasks expired",
  async (db) => {
    const clock = new FakeClock();
    const config = new Config("runs").withPollInterval(5);
    const storage = db.storage<number>(config, { clock }); // default: done 7 days, killed 30
    const filler = db.storage<number>(config.setRetention(KEEP), { clock });
    const flow = new Workflow<number>("keep")
      .andThen((n: number) => {
        if (n === 3) throw new Error("step 1 of run 3");
        return n;
      })
      .andThen((n: number) => {
        if (n === 2) throw new Error("step 2 of run 2, retried in a year");
        return n * 10;
      });
    const done = await filler.pushStart(1);
    const running = await filler.pushStart(2);
    const failed = await filler.pushStart(3, { maxAttempts: 1 });
    const worker = new WorkerBuilder("runner").backend(filler).concurrency(4)
      .retry({ backoff: () => 365 * DAY }).handleSignals(false).build(flow);
    {
      await using _running = start(worker);
      await waitUntil(async () => {
        const [a, b, c] = await Promise.all(
          [done, running, failed].map((id) => filler.workflowRun(id)),
        );
        return a?.status === "done" && c?.status === "failed" && b?.steps[1]?.status === "failed";
      }, "runs 1 done, 2 waiting for a retry, 3 failed");
    }
    const stepsOf = async (id: string) => (await filler.workflowRun(id))?.steps.length ?? 0;
    assert.deepEqual([await stepsOf(done), await stepsOf(running), await stepsOf(failed)], [
      2,
      2,
      1,
    ]);

    clock.advance(8 * DAY);
    assert.deepEqual(await retentionPass(storage, "me"), {
      tasks: 2,
      runs: 1,
      batches: 1,
      leased: false,
    });
    assert.equal(await filler.workflowRun(done), undefined, "the done run went, with its tasks");
    assert.equal(await stepsOf(running), 2, "a running run keeps its old done step");
    assert.equal(await stepsOf(failed), 1, "a failed run is kept as long as killed tasks");

    clock.advance(23 * DAY);
    assert.deepEqual(await retentionPass(storage, "me"), {
      tasks: 1,
      runs: 1,
      batches: 1,
      leased: false,
    });
    assert.equal(await filler.workflowRun(failed), undefined);
    assert.equal((await filler.workflowRun(running))?.status, "running");
    assert.equal(await stepsOf(running), 2);
  },
);

backendTest("vacuum treats runs as retention does: whole, once finished", async (db) => {
  const clock = new FakeClock();
  const storage = db.storage<number>(
    new Config("vacuum-runs").withPollInterval(5).setRetention(KEEP),
    {
      clock,
    },
  );
  const flow = new Workflow<number>("two").andThen((n: number) => n + 1).andThen((n: number) => {
    if (n === 3) throw new Error("retried in a year");
    return n;
  });
  const finished = await storage.pushStart(0);
  const running = await storage.pushStart(2);
  const worker = new WorkerBuilder("vacuum-runner").backend(storage)
    .retry({ backoff: () => 365 * DAY }).handleSignals(false).build(flow);
  {
    await using _running = start(worker);
    await waitUntil(async () => {
      const [a, b] = await Promise.all([
        storage.workflowRun(finished),
        storage.workflowRun(running),
      ]);
      return a?.status === "done" && b?.steps[1]?.status === "failed";
    }, "one run done, one waiting for a retry");
  }
  clock.advance(DAY);
  assert.equal(await storage.vacuum({ olderThanMs: 0 }), 2, "the done run's 2 tasks");
  assert.equal(await storage.workflowRun(finished), undefined, "and the run");
  const kept = await storage.workflowRun(running);
  assert.deepEqual(kept?.steps.map((step) => step.status), ["done", "failed"], "kept whole");
});

backendTest("a task deleted by retention releases its unique key", async (db) => {
  const clock = new FakeClock();
  const { storage, filler } = queueOf(db, clock, "unique", { done: "1d" });
  const unique = (): UniqueOptions => ({ key: "report-2026-01", states: ["pending", "done"] });
  const first = await filler.pushDetailed(1, { unique: unique() });
  await finish(filler, [first.id]);
  const blocked = await filler.pushDetailed(2, { unique: unique() });
  assert.deepEqual(blocked, { id: first.id, inserted: false }, "the done task holds the key");
  clock.advance(DAY);
  assert.equal((await retentionPass(storage, "me")).tasks, 1);
  const again = await filler.pushDetailed(3, { unique: unique() });
  assert.equal(again.inserted, true);
  assert.notEqual(again.id, first.id);
});
