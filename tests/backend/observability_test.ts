/**
 * Conformance: what `Admin` reports. Queues and their counts, workers alive and dead, stats per
 * state, throughput per queue and minute, workflow runs and their steps, and task listings with
 * filters, pages and previews.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Config, Task, WorkerBuilder, Workflow } from "../../mod.ts";
import { backendTest, FakeClock, start, waitUntil } from "./_suite.ts";

const ZERO = { pending: 0, queued: 0, running: 0, done: 0, failed: 0, killed: 0 };

backendTest(
  "Admin.listQueues() and stats() count tasks per state and queue, with the oldest due task",
  async (db) => {
    const clock = new FakeClock();
    const t = clock.now();
    const alpha = db.storage<number>("alpha", { clock });
    const beta = db.storage<number>("beta", { clock });
    const admin = db.admin({ clock });
    await alpha.push(1);
    await alpha.push(2, { runAt: t - 500 });
    await alpha.push(3, { runAfter: 60_000 }); // scheduled: pending but not due
    await admin.kill(await alpha.push(4));
    const betaIds = await beta.pushAll([new Task(1), new Task(2)]);
    const worker = new WorkerBuilder("counter").backend(beta).handleSignals(false).build((n) => n);
    await worker.runUntil(beta.waitFor(betaIds, { timeoutMs: 10_000 }));

    const alphaCounts = { ...ZERO, pending: 3, killed: 1, total: 4 };
    const betaCounts = { ...ZERO, done: 2, total: 2 };
    const queues = await admin.listQueues();
    assert.deepEqual(queues.filter((q) => q.name !== "beta"), [
      {
        name: "alpha",
        counts: alphaCounts,
        oldestDueAt: t - 500,
        aliveWorkers: 0,
        paused: false,
        limits: {},
      },
    ]);
    assert.deepEqual(queues.find((q) => q.name === "beta")?.counts, betaCounts);
    assert.equal(queues.find((q) => q.name === "beta")?.oldestDueAt, null);
    assert.deepEqual(await admin.stats("alpha"), alphaCounts);
    assert.deepEqual(await alpha.stats("beta"), betaCounts);
    assert.deepEqual(await admin.stats(), { ...ZERO, pending: 3, done: 2, killed: 1, total: 6 });
    assert.deepEqual(await admin.stats("empty"), { ...ZERO, total: 0 });
  },
);

backendTest(
  "Admin.listWorkers() shows a worker alive while it runs and dead once it stopped",
  async (db) => {
    const storage = db.storage<number>(new Config("jobs").setKeepAlive(50));
    const admin = db.admin();
    const worker = new WorkerBuilder("lister").backend(storage).concurrency(3).handleSignals(false)
      .build((n) => n);
    const running = start(worker);
    try {
      await waitUntil(
        async () => (await admin.listWorkers()).length === 1,
        "the worker to register",
      );
      const [info] = await admin.listWorkers("jobs");
      assert.deepEqual(
        [info?.name, info?.queue, info?.alive, info?.stoppedAt, info?.pid, info?.concurrency],
        ["lister", "jobs", true, null, Deno.pid, 3],
      );
      assert.equal(typeof info?.host, "string");
      assert.deepEqual(await admin.listWorkers("other"), []);
      assert.equal((await admin.listQueues()).find((q) => q.name === "jobs")?.aliveWorkers, 1);
    } finally {
      await running.stop();
    }
    const [after] = await admin.listWorkers();
    assert.equal(after?.name, "lister");
    assert.equal(after?.alive, false);
    assert.equal(typeof after?.stoppedAt, "number");
    assert.equal((await admin.listQueues()).find((q) => q.name === "jobs")?.aliveWorkers, 0);
  },
);

backendTest(
  "Admin.throughput() counts done tasks, failed attempts and killed tasks per queue and minute",
  async (db) => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1, 12, 0, 30));
    const q1 = db.storage<{ fail: number }>("q1", { clock });
    const q2 = db.storage<{ fail: number }>("q2", { clock });
    const admin = db.admin({ clock });
    const ids = [
      await q1.push({ fail: 0 }),
      await q1.push({ fail: 1 }, { maxAttempts: 2 }), // fails once, then done
      await q1.push({ fail: 9 }, { maxAttempts: 1 }), // killed on its first failure
    ];
    const untouched = await q2.push({ fail: 0 });
    const worker = new WorkerBuilder("counter").backend(q1).retry({ backoff: () => 0 })
      .handleSignals(false)
      .build((args, ctx) => {
        if (ctx.attempt <= args.fail) throw new Error(`attempt ${ctx.attempt} fails`);
        return "ok";
      });
    await worker.runUntil(q1.waitFor(ids, { timeoutMs: 10_000 }));
    await admin.kill(untouched);
    await admin.retry(ids[2]!); // a retry is not an outcome: nothing is counted for it
    const minute = Date.UTC(2026, 0, 1, 12, 0, 0);
    assert.deepEqual(await admin.throughput(), [
      { queue: "q1", minute, done: 2, failed: 1, killed: 1 },
      { queue: "q2", minute, done: 0, failed: 0, killed: 1 },
    ]);
    assert.deepEqual(await admin.throughput({ queue: "q2" }), [
      { queue: "q2", minute, done: 0, failed: 0, killed: 1 },
    ]);

    clock.advance(2 * 60 * 60_000); // two hours later
    await admin.kill(await q2.push({ fail: 0 }));
    assert.deepEqual(await admin.throughput(), [
      { queue: "q2", minute: minute + 2 * 60 * 60_000, done: 0, failed: 0, killed: 1 },
    ], "only the last 60 minutes");
    assert.equal((await admin.throughput({ minutes: 24 * 60 })).length, 3);
    await admin.vacuum({ olderThanMs: 60 * 60_000 });
    assert.equal((await admin.throughput({ minutes: 24 * 60 })).length, 1, "vacuum forgets them");
  },
);

backendTest(
  "Admin.listTasks() filters by queue and status, pages newest first, and previews long values",
  async (db) => {
    const clock = new FakeClock();
    const a = db.storage<string>("a", { clock });
    const b = db.storage<string>("b", { clock });
    const admin = db.admin({ clock });
    const aIds: string[] = [];
    for (let i = 0; i < 5; i++) {
      aIds.push(await a.push(`a${i}`));
      clock.advance(1);
      if (i < 2) await b.push(`b${i}`);
      clock.advance(1);
    }
    await admin.kill(aIds[1]!);
    const argsOf = (records: { args: unknown }[]) => records.map((record) => record.args);
    assert.deepEqual(argsOf(await admin.listTasks({ queue: "a" })), ["a4", "a3", "a2", "a1", "a0"]);
    assert.deepEqual(argsOf(await admin.listTasks({ queue: "a", page: 2, pageSize: 3 })), [
      "a1",
      "a0",
    ]);
    assert.deepEqual(await admin.listTasks({ queue: "a", page: 3, pageSize: 3 }), []);
    assert.deepEqual(argsOf(await admin.listTasks({ status: "killed" })), ["a1"]);
    assert.deepEqual(argsOf(await admin.listTasks({ queue: "b", status: "pending" })), [
      "b1",
      "b0",
    ]);
    assert.deepEqual(argsOf(await admin.listTasks()), ["a4", "a3", "a2", "b1", "a1", "b0", "a0"]);

    const files = db.storage<{ body: string }>("files", { clock });
    clock.advance(1);
    const big = await files.push({ body: "x".repeat(1_000_000) });
    clock.advance(1);
    const small = await files.push({ body: "short" });
    const [smallListed, bigListed] = await admin.listTasks({ queue: "files", previewBytes: 101 });
    assert.equal(smallListed?.id, small);
    assert.deepEqual(smallListed?.args, { body: "short" }, "a value that fits is decoded");
    assert.equal(smallListed?.cut, undefined);
    assert.equal(bigListed?.id, big);
    assert.equal(bigListed?.args, undefined, "a longer one is not read whole");
    const encoded = JSON.stringify({ body: "x".repeat(1_000_000) });
    assert.deepEqual(bigListed?.cut, {
      args: { bytes: encoded.length, text: encoded.slice(0, 101) },
    });
    assert.equal(
      (await files.fetchById(big))?.args.body.length,
      1_000_000,
      "fetchById reads whole",
    );
    await assert.rejects(() => admin.listTasks({ previewBytes: -1 }), RangeError);
    await assert.rejects(() => admin.listTasks({ page: 0 }), RangeError);
  },
);

backendTest(
  "Admin.listRuns() and workflowRun() report runs with their state, counts, graph and steps",
  async (db) => {
    const storage = db.storage<number>("math");
    const admin = db.admin();
    const flow = new Workflow<number>("checked")
      .andThen(function check(n: number) {
        if (n < 0) throw new Error("negative");
        return n;
      })
      .andThen(function double(n: number) {
        return n * 2;
      });
    const good = await storage.pushStart(2);
    const bad = await storage.pushStart(-1, { maxAttempts: 1 });
    const elsewhere = await db.storage<number>("elsewhere").pushStart(5);
    assert.equal((await admin.workflowRun(good))?.graph, null, "no graph before a step ran");
    const worker = new WorkerBuilder("runner").backend(storage).handleSignals(false).build(flow);
    await worker.runUntil(Promise.all([good, bad].map((id) => storage.waitForRun(id))));

    const runs = await admin.listRuns({ queue: "math" });
    assert.deepEqual(runs.map((run) => [run.id, run.status]), [[bad, "failed"], [good, "done"]]);
    assert.equal(runs[0]!.workflow, "checked");
    assert.equal(runs[0]!.error?.message, "negative");
    assert.deepEqual(runs[0]!.tasks, { total: 1, done: 0, active: 0, killed: 1 });
    assert.deepEqual(runs[1]!.tasks, { total: 2, done: 2, active: 0, killed: 0 });
    assert.deepEqual((await admin.listRuns({ status: "done" })).map((run) => run.id), [good]);
    assert.deepEqual((await admin.listRuns({ status: "running" })).map((run) => run.id), [
      elsewhere,
    ]);
    assert.equal((await admin.listRuns()).length, 3, "every queue when none is given");
    assert.deepEqual(
      (await admin.listRuns({ queue: "math", page: 2, pageSize: 1 })).map((r) => r.id),
      [good],
    );

    const run = await admin.workflowRun(good);
    assert.equal(run?.status, "done");
    assert.equal(run?.result, 4);
    assert.ok(run?.doneAt !== null);
    assert.deepEqual(run?.graph, {
      nodes: [{ key: "0", label: "andThen check" }, { key: "1", label: "andThen double" }],
      edges: [["0", "1"]],
      start: "0",
    });
    assert.deepEqual(
      run?.steps.map((step) => [step.node, step.status, step.attempts, step.result]),
      [["0", "done", 1, 2], ["1", "done", 1, 4]],
    );
    assert.equal((await admin.workflowRun(elsewhere))?.status, "running");
  },
);
