/**
 * Conformance: workflow runs. A `Workflow`'s steps run one after another, each its own task (a
 * `delayFor` step schedules the next one: it is not claimed before it is due), `filterMap` fans
 * out and collects, `fold` and `repeatUntil` run one task per turn; a `DagFlow` fans out and
 * fans in, each node once. Runs end `done` with their result or `failed` with their error; a
 * killed step fails its run and `retry()` revives it.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  AbortError,
  Config,
  DagFlow,
  type RunRecord,
  type StepRecord,
  type Storage,
  type TaskContext,
  WorkerBuilder,
  Workflow,
} from "../../mod.ts";
import { afterReads, backendTest, CountingClock, gate, start, waitUntil } from "./_suite.ts";

const RUN_TIMEOUT_MS = 10_000;

/** The steps of a run by node name (`graph` key); fails if a node has two tasks. */
function byNode(run: RunRecord): Map<string, StepRecord> {
  const steps = new Map<string, StepRecord>();
  for (const step of run.steps) {
    const key = step.node ?? "(none)";
    assert.ok(!steps.has(key), `node ${key} has two tasks`);
    steps.set(key, step);
  }
  return steps;
}

/** Resolves once the run's step for `node` is done (read through the public API). */
function afterNode(storage: Storage<unknown>, runId: string, node: string): Promise<void> {
  return waitUntil(
    async () =>
      (await storage.workflowRun(runId))?.steps.some((s) =>
        s.node === node && s.status === "done"
      ) ??
        false,
    `node ${node} to be done`,
  );
}

backendTest(
  "Workflow runs andThen, delayFor (not claimed before due), filterMap skipping a failed item, fold and repeatUntil",
  async (db) => {
    const clock = new CountingClock();
    const storage = db.storage<number>(new Config("pipeline").withPollInterval(5), { clock });
    const itemCalls = new Map<number, number>();
    let tries = 0;
    const flow = new Workflow<number>("pipeline")
      .andThen((n) => [n, n + 1, n + 2, n + 3])
      .delayFor(60_000)
      .filterMap((x: number) => {
        itemCalls.set(x, (itemCalls.get(x) ?? 0) + 1);
        if (x === 3) throw new Error(`no stock for ${x}`);
        return x * 10;
      }, { failedItems: "skip" })
      .fold((acc: number, x: number) => acc + x, 0)
      .repeatUntil((total) => (++tries < 3 ? undefined : `${total} after ${tries} tries`));
    const runId = await storage.pushStart(1, { maxAttempts: 2 });
    const worker = new WorkerBuilder("pipeline-worker").backend(storage).concurrency(4)
      .retry({ backoff: () => 0 }).handleSignals(false).build(flow);
    await using running = start(worker);

    await waitUntil(
      async () => (await storage.workflowRun(runId))?.steps.length === 3,
      "the step after the delay to be enqueued",
    );
    await afterReads(clock);
    const waiting = (await storage.workflowRun(runId))!;
    const [, delay, next] = waiting.steps;
    assert.equal(waiting.status, "running");
    assert.deepEqual([next?.status, next?.attempts], ["pending", 0], "not claimed before due");
    assert.equal(next?.runAt, delay!.doneAt! + 60_000);
    assert.equal(itemCalls.size, 0);

    clock.advance(60_000);
    const run = await storage.waitForRun(runId, { timeoutMs: RUN_TIMEOUT_MS });
    await running.stop();
    assert.equal(run.status, "done", JSON.stringify(run.error));
    assert.equal(run.result, "70 after 3 tries");
    assert.equal(run.workflow, "pipeline");
    assert.deepEqual(Object.fromEntries(itemCalls), { 1: 1, 2: 1, 3: 2, 4: 1 });
    assert.equal(tries, 3);
    // 1 andThen + 1 delay + 1 fan-out + 4 items + 1 collector + 3 fold turns + 3 tries.
    assert.equal(run.steps.length, 14);
    const failedItems = run.steps.filter((step) => step.status !== "done");
    assert.equal(failedItems.length, 1, "only the failing item is not done");
    assert.deepEqual(
      [failedItems[0]?.status, failedItems[0]?.attempts, failedItems[0]?.error?.message],
      ["killed", 2, "no stock for 3"],
    );
    assert.ok(run.steps.every((step) => step.status === "killed" || step.attempts === 1));
    assert.equal(run.steps.at(-1)?.result, "70 after 3 tries");
  },
);

backendTest(
  "Workflow fails the run when a filterMap item runs out of attempts, or a step throws AbortError; no later step runs",
  async (db) => {
    const storage = db.storage<number[]>("failing");
    let after = 0;
    const flow = new Workflow<number[]>("failing")
      .filterMap((n: number) => {
        if (n === 30) throw new Error(`no stock for ${n}`);
        return n;
      })
      .andThen((values) => {
        after++;
        return values;
      });
    const aborting = new Workflow<number[]>("aborting")
      .andThen((list): number => {
        throw new AbortError(`card declined for ${list.length} items`);
      })
      .andThen((n) => {
        after++;
        return n;
      });
    const failing = await storage.pushStart([10, 20, 30, 40], { maxAttempts: 2 });
    const aborted = await storage.forQueue<number[]>("aborting").pushStart([1, 2]);

    const w1 = new WorkerBuilder("failing-worker").backend(storage).concurrency(4)
      .retry({ backoff: () => 0 }).handleSignals(false).build(flow);
    await w1.runUntil(storage.waitForRun(failing, { timeoutMs: RUN_TIMEOUT_MS }));
    const aborter = storage.forQueue<number[]>("aborting");
    const w2 = new WorkerBuilder("aborting-worker").backend(aborter).handleSignals(false)
      .build(aborting);
    await w2.runUntil(storage.waitForRun(aborted, { timeoutMs: RUN_TIMEOUT_MS }));

    const run1 = await storage.waitForRun(failing);
    assert.equal(run1.status, "failed");
    assert.equal(run1.error?.name, "FilterMapError");
    assert.match(run1.error?.message ?? "", /1 item\(s\) failed: #2: no stock for 30$/);
    assert.ok(run1.doneAt !== null);
    const run2 = await storage.waitForRun(aborted);
    assert.equal(run2.status, "failed");
    assert.deepEqual([run2.error?.name, run2.error?.message], [
      "AbortError",
      "card declined for 2 items",
    ]);
    assert.deepEqual(run2.steps.map((step) => [step.status, step.attempts]), [["killed", 1]]);
    assert.equal(after, 0, "no step after the failure ran");
    assert.deepEqual(
      (await storage.listRuns({ status: "failed" })).map((r) => r.id).sort(),
      [failing, aborted].sort(),
    );
  },
);

backendTest(
  "DagFlow fans out from one node and fans in several dependencies once, inputs in dependsOn order",
  async (db) => {
    const storage = db.storage<unknown>("dag");
    const calls = new Map<string, number>();
    const count = (node: string) => calls.set(node, (calls.get(node) ?? 0) + 1);
    const dag = new DagFlow("fan");
    const source = dag.addNode("source", (n: number) => {
      count("source");
      return n;
    });
    // `a` finishes last: the fan-in waits for the slowest dependency.
    const a = dag.addNode("a", async (n: number, ctx: TaskContext) => {
      count("a");
      await afterNode(storage, ctx.runId!, "b");
      await afterNode(storage, ctx.runId!, "c");
      return n + 1;
    }).dependsOn(source);
    const b = dag.addNode("b", (n: number) => {
      count("b");
      return n * 2;
    }).dependsOn(source);
    const c = dag.addNode("c", (n: number) => {
      count("c");
      return n * 3;
    }).dependsOn(source);
    const join = dag.addNode("join", (inputs: number[]) => {
      count("join");
      return inputs;
    }).dependsOn([c, a, b]);
    dag.addNode("final", ([joined, original]: [number[], number]) => {
      count("final");
      return `${joined.join("+")} from ${original}`;
    }).dependsOn([join, source]);
    dag.validate();

    const runId = await storage.pushStart(5);
    const worker = new WorkerBuilder("dag-worker").backend(storage).concurrency(4)
      .handleSignals(false).build(dag);
    await worker.runUntil(storage.waitForRun(runId, { timeoutMs: RUN_TIMEOUT_MS }));
    const run = await storage.waitForRun(runId);

    assert.equal(run.status, "done", JSON.stringify(run.error));
    assert.equal(run.result, "15+6+10 from 5");
    assert.equal(run.workflow, "fan");
    assert.deepEqual(Object.fromEntries(calls), { source: 1, a: 1, b: 1, c: 1, join: 1, final: 1 });
    const steps = byNode(run);
    assert.deepEqual([...steps.keys()].sort(), ["a", "b", "c", "final", "join", "source"]);
    assert.ok(run.steps.every((step) => step.status === "done" && step.attempts === 1));
    assert.deepEqual(steps.get("join")?.result, [15, 6, 10]);
    const [summary] = await storage.listRuns({ queue: "dag" });
    assert.deepEqual(summary?.tasks, { total: 6, done: 6, active: 0, killed: 0 });
  },
);

backendTest(
  "DagFlow feeds each entry node its own input from startFanOut(), and a killed node fails the run",
  async (db) => {
    const storage = db.storage<unknown>("entries");
    let joined = 0;
    const dag = new DagFlow("entries");
    const double = dag.addNode("double", (n: number) => n * 2);
    const greet = dag.addNode("greet", (who: string) => {
      if (who === "nobody") throw new AbortError("nobody to greet");
      return `hello ${who}`;
    });
    dag.addNode("join", ([d, g]: [number, string]) => {
      joined++;
      return `${g}: ${d}`;
    }).dependsOn([double, greet]);
    assert.deepEqual(dag.entryNodes, ["double", "greet"]);

    const good = await storage.startFanOut([21, "ada"]);
    const bad = await storage.startFanOut([1, "nobody"]);
    const worker = new WorkerBuilder("entries-worker").backend(storage).concurrency(2)
      .handleSignals(false).build(dag);
    await worker.runUntil(
      Promise.all([good, bad].map((id) => storage.waitForRun(id, { timeoutMs: RUN_TIMEOUT_MS }))),
    );

    const done = await storage.waitForRun(good);
    assert.equal(done.status, "done", JSON.stringify(done.error));
    assert.equal(done.result, "hello ada: 42");
    const failed = await storage.waitForRun(bad);
    assert.equal(failed.status, "failed");
    assert.deepEqual([failed.error?.name, failed.error?.message], [
      "AbortError",
      "nobody to greet",
    ]);
    assert.equal(byNode(failed).has("join"), false, "the join of a failed run is never enqueued");
    assert.equal(joined, 1);
  },
);

backendTest(
  "Admin.kill() of a running DAG dependency fails the run and discards its outcome; retry() revives the run and the fan-in runs once",
  async (db) => {
    const storage = db.storage<unknown>("revive");
    const admin = db.admin();
    const release = gate();
    let slowCalls = 0;
    const joined: number[][] = [];
    const dag = new DagFlow("revive");
    const fast = dag.addNode("fast", (n: number) => n + 1);
    const slow = dag.addNode("slow", async (n: number) => {
      if (++slowCalls === 1) await release.promise;
      return n * 2;
    });
    dag.addNode("join", (inputs: number[]) => {
      joined.push(inputs);
      return inputs.join(",");
    }).dependsOn([fast, slow]);
    const runId = await storage.startFanOut([1, 2]);
    const worker = new WorkerBuilder("reviver").backend(storage).concurrency(3).handleSignals(false)
      .build(dag);
    await using running = start(worker);
    const stepOf = async (node: string) =>
      (await storage.workflowRun(runId))?.steps.find((step) => step.node === node);
    await waitUntil(async () => (await stepOf("slow"))?.status === "running", "slow to run");
    await afterNode(storage, runId, "fast");

    const slowStep = (await stepOf("slow"))!;
    await admin.kill(slowStep.taskId, "cancelled");
    release.open();
    const failed = await storage.waitForRun(runId, { timeoutMs: RUN_TIMEOUT_MS });
    assert.equal(failed.status, "failed");
    assert.equal(failed.error?.message, "cancelled");
    await waitUntil(() => worker.inFlight === 0, "the killed node's handler to finish");
    assert.equal((await stepOf("slow"))?.status, "killed", "its late outcome was discarded");
    assert.equal(await stepOf("join"), undefined, "no fan-in for a failed run");

    await admin.retry(slowStep.taskId);
    assert.equal((await storage.workflowRun(runId))?.status, "running", "the run is revived");
    const run = await storage.waitForRun(runId, { timeoutMs: RUN_TIMEOUT_MS });
    await running.stop();
    assert.equal(run.status, "done", JSON.stringify(run.error));
    assert.equal(run.result, "2,4");
    assert.deepEqual(joined, [[2, 4]], "the fan-in ran once");
    assert.equal(slowCalls, 2);
    assert.deepEqual(
      run.steps.map((step) => [step.node, step.status, step.attempts]),
      [[null, "done", 1], ["fast", "done", 1], ["slow", "done", 1], ["join", "done", 1]],
    );
  },
);
