import assert from "node:assert/strict";
import { DagFlow, SqliteStorage, WorkerBuilder, Workflow } from "../../mod.ts";
import { tempDatabase } from "../_helpers.ts";

Deno.test("SqliteStorage.listRuns() lists runs newest first with task counts, filtered by queue and status", async () => {
  await using temp = await tempDatabase();
  const storage = new SqliteStorage<number>(temp.db, "math");
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
  await storage.forQueue<number>("elsewhere").pushStart(5);
  const worker = new WorkerBuilder("runner").backend(storage).handleSignals(false).build(flow);
  await worker.runUntil(Promise.all([storage.waitForRun(good), storage.waitForRun(bad)]));

  const runs = await storage.listRuns({ queue: "math" });
  assert.deepEqual(runs.map((run) => [run.id, run.status]), [[bad, "failed"], [good, "done"]]);
  assert.equal(runs[0]!.workflow, "checked");
  assert.equal(runs[0]!.error?.message, "negative");
  assert.deepEqual(runs[1]!.tasks, { total: 2, done: 2, active: 0, killed: 0 });
  assert.deepEqual(runs[0]!.tasks, { total: 1, done: 0, active: 0, killed: 1 });
  assert.deepEqual((await storage.listRuns({ status: "done" })).map((run) => run.id), [good]);
  assert.equal((await storage.listRuns()).length, 3, "every queue when none is given");
  assert.deepEqual(
    (await storage.listRuns({ queue: "math", page: 2, pageSize: 1 })).map((r) => r.id),
    [good],
  );
  await assert.rejects(
    () => storage.listRuns({ status: "lost" as "done" }),
    /'status' must be one of running, done, failed/,
  );
  await assert.rejects(() => storage.listRuns({ page: 0 }), RangeError);
});

Deno.test("SqliteStorage.workflowRun() reports a sequential workflow's graph and the node of each step", async () => {
  await using temp = await tempDatabase();
  const storage = new SqliteStorage<number>(temp.db, "math");
  const flow = new Workflow<number>("arith")
    .andThen(function inc(n: number) {
      return n + 1;
    })
    .delayFor(1)
    .andThen((n: number) => n * 3);
  assert.equal(await storage.workflowRun("none"), undefined);
  const runId = await storage.pushStart(1);
  assert.equal((await storage.workflowRun(runId))?.graph, null, "unknown until a step ran");
  const worker = new WorkerBuilder("runner").backend(storage).handleSignals(false).build(flow);
  await worker.runUntil(storage.waitForRun(runId));
  const run = await storage.workflowRun(runId);
  assert.deepEqual(run?.graph, {
    nodes: [
      { key: "0", label: "andThen inc" },
      { key: "1", label: "delay" },
      { key: "2", label: "andThen" },
    ],
    edges: [["0", "1"], ["1", "2"]],
    start: "0",
  });
  assert.deepEqual(run?.steps.map((step) => step.node), ["0", "1", "2"]);
  assert.equal(run?.result, 6);
});

Deno.test("SqliteStorage.workflowRun() reports a DagFlow's nodes and dependencies as its graph", async () => {
  await using temp = await tempDatabase();
  const storage = new SqliteStorage<unknown>(temp.db, "etl");
  const dag = new DagFlow("user-etl");
  const name = dag.addNode("name", (id: number) => `user-${id}`);
  const age = dag.addNode("age", (id: number) => id + 20);
  dag.addNode("collect", ([n, a]: [string, number]) => `${n} is ${a}`).dependsOn([name, age]);
  const runId = await storage.startFanOut([1, 2]);
  const worker = new WorkerBuilder("etl").backend(storage).handleSignals(false).build(dag);
  await worker.runUntil(storage.waitForRun(runId));
  const run = await storage.workflowRun(runId);
  assert.deepEqual(run?.graph, {
    nodes: [
      { key: "name", label: "name" },
      { key: "age", label: "age" },
      { key: "collect", label: "collect" },
    ],
    edges: [["name", "collect"], ["age", "collect"]],
    start: null,
  });
  // The first task only starts the two entry nodes: it runs no node of the graph.
  assert.deepEqual(run?.steps.map((step) => step.node), [null, "name", "age", "collect"]);
  assert.deepEqual(dag.graph(), run?.graph);
});
