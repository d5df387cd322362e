/**
 * Conformance, across processes: a DAG's fan-in node is enqueued and run exactly once per run
 * when its two dependencies complete in different processes at nearly the same moment.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Config } from "../../mod.ts";
import { countBy, readRecords, spawnChild, stopChild } from "./_child.ts";
import { backendTest, waitUntil } from "./_suite.ts";

backendTest(
  "cross-process: DagFlow enqueues and runs a fan-in node exactly once per run when 2 processes complete its dependencies",
  async (db, t) => {
    const runs = 60;
    const queue = "fanin";
    const dir = await Deno.makeTempDir({ prefix: "apalis_records_" });
    const record = `${dir}/nodes.log`;
    // No claim-ahead and a short poll: both processes take tasks of the same runs as they come.
    const args = [
      "--flow",
      "fanin",
      "--queue",
      queue,
      "--concurrency",
      "1",
      "--buffer-size",
      "1",
      "--poll-ms",
      "10",
      "--sleep-ms",
      "3",
      "--record",
      record,
    ];
    const children = ["p1", "p2"].map((name) => spawnChild(db.location, name, args));
    try {
      await Promise.all(children.map((child) => child.ready));
      const storage = db.storage<unknown>(new Config(queue));
      const runIds: string[] = [];
      for (let n = 1; n <= runs; n++) runIds.push(await storage.startFanOut([n, n]));
      await waitUntil(
        async () => (await storage.listRuns({ queue, status: "running" })).length === 0,
        "every run to end",
        90_000,
      );
      await Promise.all(children.map(stopChild));

      const nodes = await readRecords(record);
      for (const [index, runId] of runIds.entries()) {
        const n = index + 1;
        const run = await storage.workflowRun(runId);
        assert.equal(run?.status, "done", `run ${n}: ${JSON.stringify(run?.error)}`);
        assert.equal(run?.result, `${2 * n}/${3 * n}`, `result of run ${n}`);
        assert.deepEqual(
          run?.steps.map((step) => step.node).sort(),
          ["collector", "left", "right", null].sort(),
          `run ${n}: the entry task and one task per node`,
        );
        assert.ok(run?.steps.every((step) => step.status === "done" && step.attempts === 1));
      }
      const collectors = countBy(nodes.filter((e) => e.node === "collector"), (e) => e.runId!);
      assert.equal(collectors.size, runs, "every run's collector ran");
      assert.deepEqual([...collectors.values()].filter((n) => n !== 1), [], "none ran twice");
      assert.equal(nodes.length, runs * 3, "each node ran once per run");
      assert.equal((await storage.stats(queue)).done, runs * 4);

      // The race happened: both processes ran nodes, and some runs had their two dependencies
      // completed by different processes.
      const byRun = new Map<string, Map<string, number>>();
      for (const e of nodes) {
        byRun.set(e.runId!, (byRun.get(e.runId!) ?? new Map()).set(e.node!, e.pid));
      }
      const split = [...byRun.values()].filter((m) => m.get("left") !== m.get("right")).length;
      const perPid = countBy(nodes, (e) => String(e.pid));
      await t.step(
        `node executions per process: ${
          JSON.stringify(Object.fromEntries(perPid))
        }; runs split across processes: ${split}`,
        () => {
          assert.deepEqual(
            [...perPid.keys()].sort(),
            children.map((child) => String(child.pid)).sort(),
            "both processes ran nodes",
          );
          assert.ok(split > 0, "no run had its two dependencies completed by different processes");
        },
      );
    } finally {
      for (const child of children) await child[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
