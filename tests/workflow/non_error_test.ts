/**
 * A Workflow step or a DagFlow node that throws or rejects with no value fails its attempt like
 * any other error: retried, then `killed`, and the run fails. Nothing after it runs.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  DagFlow,
  type RunRecord,
  SqliteStorage,
  type TaskFlow,
  WorkerBuilder,
  Workflow,
} from "../../mod.ts";
import { tempDatabase } from "../_helpers.ts";

/** Runs the flow's run to its end with a quick backoff and returns it. */
async function runFlow(
  storage: SqliteStorage<unknown>,
  flow: TaskFlow<unknown>,
  runId: string,
): Promise<{ run: RunRecord; successes: number }> {
  let successes = 0;
  const worker = new WorkerBuilder("flow-worker")
    .backend(storage)
    .retry({ backoff: { initialMs: 10, factor: 1, jitter: 0 } })
    .handleSignals(false)
    .onEvent((_ctx, event) => {
      if (event.type === "success") successes++;
    })
    .build(flow);
  const ended = storage.waitForRun(runId, { timeoutMs: 10_000 });
  await worker.runUntil(ended);
  return { run: await ended, successes };
}

Deno.test("Workflow fails the run after the step's retries when an andThen step throws undefined", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<unknown>(tmp.db, "flow-undefined");
  let after = 0;
  const flow = new Workflow<number>("no-value")
    .andThen((n) => n + 1)
    .andThen((): number => {
      throw undefined;
    })
    .andThen((n) => {
      after++;
      return n;
    });
  const runId = await storage.pushStart(1, { maxAttempts: 2 });
  const { run, successes } = await runFlow(storage, flow as TaskFlow<unknown>, runId);

  assert.equal(run.status, "failed");
  assert.equal(run.error?.name, "NonError");
  assert.match(run.error?.message ?? "", /undefined/);
  assert.deepEqual(run.steps.map((step) => [step.status, step.attempts]), [
    ["done", 1],
    ["killed", 2],
  ]);
  assert.equal(run.steps[1]!.error?.name, "NonError");
  assert.equal(after, 0, "no step after the failed one runs");
  assert.equal(successes, 1, "only the first step succeeded");
});

Deno.test("Workflow fails the run when an andThen step rejects with null", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<unknown>(tmp.db, "flow-null");
  const flow = new Workflow<number>("null").andThen(() => Promise.reject(null));
  const runId = await storage.pushStart(1, { maxAttempts: 2 });
  const { run, successes } = await runFlow(storage, flow as TaskFlow<unknown>, runId);

  assert.equal(run.status, "failed");
  assert.equal(run.error?.name, "NonError");
  assert.match(run.error?.message ?? "", /null/);
  assert.deepEqual(run.steps.map((step) => [step.status, step.attempts]), [["killed", 2]]);
  assert.equal(successes, 0);
});

Deno.test("DagFlow fails the run after the node's retries when a node returns Promise.reject() with no value", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<unknown>(tmp.db, "dag-undefined");
  let downstream = 0;
  const dag = new DagFlow("no-value");
  const first = dag.addNode("first", (n: number) => n * 2);
  const bad = dag.addNode("bad", () => Promise.reject()).dependsOn(first);
  dag.addNode("last", (x: unknown) => {
    downstream++;
    return x;
  }).dependsOn(bad);
  const runId = await storage.pushStart(3, { maxAttempts: 2 });
  const { run, successes } = await runFlow(storage, dag, runId);

  assert.equal(run.status, "failed");
  assert.equal(run.error?.name, "NonError");
  assert.match(run.error?.message ?? "", /undefined/);
  const badStep = run.steps.find((step) => step.node === "bad")!;
  assert.deepEqual([badStep.status, badStep.attempts], ["killed", 2]);
  assert.equal(run.steps.some((step) => step.node === "last"), false, "nothing after 'bad'");
  assert.equal(downstream, 0);
  assert.equal(successes, 1, "only 'first' succeeded");
});
