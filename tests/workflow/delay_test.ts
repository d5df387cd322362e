/**
 * A `delayWith` that computes no usable delay (NaN, negative, Infinity, not a number) fails its
 * step with a RangeError that names the step and the value, instead of a constraint error from
 * the database (NaN) or a step that never runs (Infinity).
 *
 * @module
 */
import assert from "node:assert/strict";
import { SqliteStorage, type TaskFlow, WorkerBuilder, Workflow } from "../../mod.ts";
import { tempDatabase } from "../_helpers.ts";

Deno.test("Workflow.delayWith() fails the run with a RangeError naming the step when the computed delay is not a number >= 0", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<unknown>(tmp.db, "bad-delays");
  const delays: unknown[] = [NaN, -5, Infinity, "10"];
  const runs: string[] = [];
  for (const [i] of delays.entries()) runs.push(await storage.pushStart(i, { maxAttempts: 1 }));
  const flow = new Workflow<number>("bad-delay")
    .andThen((i) => i)
    .delayWith((i) => delays[i] as number)
    .andThen(() => "never");
  const worker = new WorkerBuilder("bad-delay-worker")
    .backend(storage)
    .handleSignals(false)
    .build(flow as TaskFlow<unknown>);
  const ended = Promise.all(runs.map((id) => storage.waitForRun(id, { timeoutMs: 10_000 })));
  await worker.runUntil(ended);
  for (const [i, run] of (await ended).entries()) {
    const label = String(delays[i]);
    assert.equal(run.status, "failed", label);
    assert.equal(run.error?.name, "RangeError", `${label}: ${JSON.stringify(run.error)}`);
    assert.match(run.error?.message ?? "", /delayWith in step 1 of workflow 'bad-delay'/, label);
    assert.ok(run.error?.message.includes(label), `${label}: ${run.error?.message}`);
    assert.deepEqual(run.steps.map((step) => step.status), ["done", "killed"], label);
  }
});
