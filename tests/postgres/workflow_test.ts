import assert from "node:assert/strict";
import {
  AbortError,
  DagFlow,
  type RunRecord,
  type StepRecord,
  WorkerBuilder,
  Workflow,
} from "../../mod.ts";
import { PostgresStorage } from "../../postgres.ts";
import { waitUntil } from "../_helpers.ts";
import { pgTest, tempPostgres } from "../_postgres.ts";

async function runToEnd<I>(
  storage: PostgresStorage<I>,
  flow: Workflow<I, unknown> | DagFlow,
  runId: string,
  concurrency = 4,
): Promise<RunRecord> {
  const worker = new WorkerBuilder("flow-worker")
    .backend(storage)
    .concurrency(concurrency)
    .retry({ backoff: { initialMs: 10, factor: 1, jitter: 0 } })
    .handleSignals(false)
    .build(flow as Workflow<I, unknown>);
  const ended = storage.waitForRun(runId, { timeoutMs: 15_000 });
  await worker.runUntil(ended);
  return await ended;
}

pgTest(
  "a Workflow on PostgreSQL runs its steps in order, with a delay and a filterMap, and ends the run done",
  async () => {
    await using db = await tempPostgres();
    const storage = new PostgresStorage<number>(db.pg, "flow");
    const flow = new Workflow<number>("pipeline")
      .andThen((n) => n + 1)
      .delayFor(50)
      .andThen((n) => [n, n * 2, n * 3])
      .filterMap((n: number) => n % 2 === 0 ? n * 10 : undefined)
      .andThen((list: number[]) => list.reduce((a, b) => a + b, 0));
    const runId = await storage.pushStart(1);
    const run = await runToEnd(storage, flow, runId);
    assert.equal(run.status, "done", JSON.stringify(run.error));
    assert.equal(run.result, 20 + 40 + 60); // [2, 4, 6], all even
    assert.equal(run.workflow, "pipeline");
    const [summary] = await storage.listRuns({ queue: "flow" });
    assert.equal(summary?.status, "done");
    assert.deepEqual(summary?.tasks, {
      total: run.steps.length,
      done: run.steps.length,
      active: 0,
      killed: 0,
    });
  },
);

pgTest(
  "a Workflow step that throws AbortError fails its run on PostgreSQL and enqueues nothing after it",
  async () => {
    await using db = await tempPostgres();
    const storage = new PostgresStorage<number>(db.pg, "abort");
    let after = 0;
    const flow = new Workflow<number>("aborting")
      .andThen(() => {
        throw new AbortError("stop here");
      })
      .andThen(() => void after++);
    const runId = await storage.pushStart(1);
    const run = await runToEnd(storage, flow, runId);
    assert.equal(run.status, "failed");
    assert.equal(run.error?.message, "stop here");
    assert.deepEqual(run.steps.map((s: StepRecord) => s.status), ["killed"]);
    assert.equal(after, 0);
  },
);

pgTest(
  "on PostgreSQL, kill() of a pending step fails its run and retry() revives it to done (the run-step trigger)",
  async () => {
    await using db = await tempPostgres();
    const storage = new PostgresStorage<number>(db.pg, "kill");
    const flow = new Workflow<number>("slow")
      .andThen((n) => n + 1)
      .delayFor(60_000)
      .andThen((n) => n * 10);
    const runId = await storage.pushStart(1);
    const first = new WorkerBuilder("first").backend(storage).handleSignals(false).build(flow);
    const running = first.run();
    try {
      await waitUntil(
        async () => (await storage.workflowRun(runId))?.steps.length === 3,
        "the step after the delay",
      );
    } finally {
      await first.stop();
      await running;
    }
    const pending = (await storage.workflowRun(runId))!.steps[2]!;
    await storage.kill(pending.taskId, "order cancelled");
    const failed = await storage.waitForRun(runId, { timeoutMs: 1000 });
    assert.equal(failed.status, "failed");
    assert.equal(failed.error?.message, "order cancelled");
    await storage.retry(pending.taskId);
    assert.equal((await storage.workflowRun(runId))?.status, "running");
    const run = await runToEnd(storage, flow, runId);
    assert.equal(run.status, "done");
    assert.equal(run.result, 20);
  },
);

pgTest(
  "a filterMap item that runs out of attempts fails the run on PostgreSQL, naming the item (joins through the trigger)",
  async () => {
    await using db = await tempPostgres();
    const storage = new PostgresStorage<number[]>(db.pg, "items", {});
    const flow = new Workflow<number[]>("items")
      .filterMap((n: number) => {
        if (n === 2) throw new AbortError(`item ${n} is bad`);
        return n;
      });
    const runId = await storage.pushStart([1, 2, 3]);
    const run = await runToEnd(storage, flow, runId);
    assert.equal(run.status, "failed");
    assert.match(run.error?.message ?? "", /item/);
    const parts = await db.pg.sql<{ slot: number; status: string }[]>`
    SELECT slot, status FROM apalis_join_parts WHERE run_id = ${runId} ORDER BY slot`;
    assert.deepEqual(parts.map((p) => [p.slot, p.status]), [[0, "done"], [1, "killed"], [
      2,
      "done",
    ]]);
  },
);

pgTest(
  "a DagFlow on PostgreSQL fans out and in: the collector gets every branch's result once",
  async () => {
    await using db = await tempPostgres();
    const storage = new PostgresStorage<unknown>(db.pg, "dag");
    const dag = new DagFlow("diamond");
    const a = dag.addNode("a", (n: number) => n + 1);
    const b = dag.addNode("b", (n: number) => n * 2).dependsOn(a);
    const c = dag.addNode("c", (n: number) => n * 3).dependsOn(a);
    dag.addNode("d", ([x, y]: [number, number]) => `${x}+${y}`).dependsOn([b, c]);
    dag.validate();
    const runId = await storage.pushStart(1);
    const run = await runToEnd(storage, dag, runId);
    assert.equal(run.status, "done", JSON.stringify(run.error));
    assert.equal(run.result, "4+6");
    assert.equal(run.steps.length, 4);
  },
);
