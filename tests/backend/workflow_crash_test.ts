/**
 * Conformance, across processes: a workflow step's ack and its successor commit together. A
 * worker killed with `kill -9` mid-run leaves each run's steps to a second worker; every run
 * ends done, no step is enqueued twice, and only steps the dead worker held run again.
 *
 * @module
 */
import assert from "node:assert/strict";
import { countBy, crashChild, readRecords, spawnChild, stopChild } from "./_child.ts";
import { backendTest, waitUntil } from "./_suite.ts";
import { stepsResult } from "./worker_child.ts";

backendTest(
  "cross-process: Workflow runs end done after kill -9 of their worker, with no step enqueued twice",
  async (db, t) => {
    const runs = 60;
    const steps = 4;
    const queue = "steps";
    const dir = await Deno.makeTempDir({ prefix: "apalis_records_" });
    const record = `${dir}/steps.log`;
    const storage = db.storage<number>(queue);
    const runIds: string[] = [];
    for (let n = 1; n <= runs; n++) runIds.push(await storage.pushStart(n));
    const args = [
      "--flow",
      "steps",
      "--queue",
      queue,
      "--concurrency",
      "4",
      "--sleep-ms",
      "5",
      "--keep-alive-ms",
      "100",
      "--orphan-after-ms",
      "1000",
      "--record",
      record,
    ];
    const first = spawnChild(db.location, "first", args);
    let second: ReturnType<typeof spawnChild> | undefined;
    try {
      await first.ready;
      await waitUntil(
        async () => (await readRecords(record)).length >= 80,
        "80 step executions by the first worker",
        90_000,
      );
      await crashChild(first);
      const held = await storage.listTasks({ queue, status: "running", pageSize: runs * steps });
      const heldIds = new Set(held.map((task) => task.id));
      assert.ok(held.length > 0, "the kill should leave steps running under the first worker");
      assert.ok((await storage.listRuns({ queue, status: "running" })).length > 0, "mid-run");

      second = spawnChild(db.location, "second", args);
      await second.ready;
      await waitUntil(
        async () => (await storage.listRuns({ queue, status: "running" })).length === 0,
        "every run to end",
        90_000,
      );
      await stopChild(second);

      for (const [index, runId] of runIds.entries()) {
        const n = index + 1;
        const run = await storage.workflowRun(runId);
        assert.equal(run?.status, "done", `run ${n}: ${JSON.stringify(run?.error)}`);
        assert.equal(run?.result, stepsResult(n), `result of run ${n}`);
        assert.deepEqual(
          run?.steps.map((step) => step.node),
          ["0", "1", "2", "3"],
          `run ${n}: each step enqueued once, in order`,
        );
      }
      const executions = await readRecords(record);
      const perTask = countBy(executions, (e) => e.taskId);
      assert.equal(perTask.size, runs * steps, "every step ran");
      const reRun = [...perTask].filter(([, count]) => count > 1).map(([id]) => id);
      for (const id of reRun) assert.ok(heldIds.has(id), `step ${id} ran twice but was not held`);
      const reRuns = executions.length - runs * steps;
      assert.ok(
        reRuns <= held.length,
        `${reRuns} re-runs, but only ${held.length} steps were held`,
      );
      await t.step(`kill -9 left ${held.length} steps held; ${reRuns} re-runs`, () => {});
    } finally {
      await first[Symbol.asyncDispose]();
      await second?.[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
