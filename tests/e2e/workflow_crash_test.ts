import assert from "node:assert/strict";
import { SqliteStorage } from "../../mod.ts";
import { tempDatabase, waitUntil } from "../_helpers.ts";
import { assertCleanExit, exitOf, reap } from "./processes.ts";
import { column, scalar } from "./_runs.ts";
import { expectedResult, STEP_RUNS_DDL, STEPS } from "./workflow_process.ts";

const TIMEOUT_MS = 120_000;
const RUNS = 200;
const ROOT = new URL("../../", import.meta.url).pathname;
const PROGRAM = new URL("./workflow_process.ts", import.meta.url).pathname;

/** Starts `deno run -A tests/e2e/workflow_process.ts` on `path`. */
function spawnFlowWorker(path: string, name: string, extra: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", PROGRAM, "--db", path, "--name", name, ...extra],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** A task's step index, in SQL (the first step's task has no `step`). */
const STEP_INDEX = "coalesce(json_extract(step, '$.i'), 0)";

Deno.test("Workflow steps run to completion after kill -9 and restart, and no successor is enqueued twice", async (t) => {
  await using tmp = await tempDatabase();
  const { db, path } = tmp;
  db.exec(STEP_RUNS_DDL);
  const storage = new SqliteStorage<number>(db, "flow");
  const inputs = new Map<string, number>();
  for (let n = 0; n < RUNS; n++) inputs.set(await storage.pushStart(n), n);

  const args = ["--queue", "flow", "--concurrency", "8", "--sleep-ms", "5"];
  const children: Deno.ChildProcess[] = [];
  try {
    const first = spawnFlowWorker(path, "flow-crashy", args);
    children.push(first);
    // Past the first step of every run (claims take the oldest due tasks first): runs partway.
    await waitUntil(
      async () => (await scalar(db, "SELECT count(*) AS n FROM step_runs")) >= RUNS + 100,
      `more than ${RUNS + 100} step executions by the first 'flow-crashy'`,
      TIMEOUT_MS,
    );
    first.kill("SIGKILL");
    const killed = await exitOf(first, "first 'flow-crashy'", TIMEOUT_MS);
    assert.equal(killed.signal, "SIGKILL", `first 'flow-crashy' ended with ${killed.code}`);

    // What the dead process left behind.
    const runningAtKill = await column(
      db,
      "SELECT id FROM apalis_tasks WHERE status = 'running' AND lock_by = 'flow-crashy' ORDER BY id",
    );
    const doneAtKill = await scalar(
      db,
      "SELECT count(*) AS n FROM apalis_runs WHERE status = 'done'",
    );
    const partwayAtKill = await scalar(
      db,
      `SELECT count(DISTINCT run_id) AS n FROM apalis_tasks
       WHERE ${STEP_INDEX} > 0 AND run_id IN (SELECT id FROM apalis_runs WHERE status = 'running')`,
    );
    const stepRunsAtKill = await scalar(db, "SELECT count(*) AS n FROM step_runs");
    assert.ok(runningAtKill.length > 0, "the kill should leave steps in flight");
    assert.ok(doneAtKill < RUNS, "the kill should come before every run is done");
    assert.ok(partwayAtKill > 0, "the kill should leave runs partway through their steps");

    // Same name, at once: it takes the dead instance's tasks back when it registers.
    const second = spawnFlowWorker(path, "flow-crashy", [...args, "--drain"]);
    children.push(second);
    assertCleanExit(
      await exitOf(second, "restarted 'flow-crashy'", TIMEOUT_MS),
      "restarted 'flow-crashy'",
    );

    // Every run done with the right result, each step a done task with its input's output.
    const wrong: string[] = [];
    for (const [runId, n] of inputs) {
      const run = await storage.workflowRun(runId);
      if (run?.status !== "done" || run.result !== expectedResult(n)) {
        wrong.push(`${runId} (input ${n}): ${run?.status} ${JSON.stringify(run?.result)}`);
        continue;
      }
      const indexes = run.steps.map((step) => (step.step as { i: number } | null)?.i ?? 0);
      if (
        JSON.stringify(indexes) !== JSON.stringify([0, 1, 2, 3]) ||
        run.steps.some((step) => step.status !== "done")
      ) {
        wrong.push(`${runId} (input ${n}): steps ${JSON.stringify(run.steps)}`);
      }
    }
    assert.deepEqual(wrong, [], "runs that did not end done with the right result");

    // No successor enqueued twice: one task per (run, step), and nothing else.
    const duplicated = await column(
      db,
      `SELECT run_id || ' step ' || ${STEP_INDEX} || ' x' || count(*) AS id FROM apalis_tasks
       GROUP BY run_id, ${STEP_INDEX} HAVING count(*) <> 1`,
    );
    assert.deepEqual(duplicated, [], "(run, step) pairs with more than one task");
    assert.equal(
      await scalar(db, "SELECT count(*) AS n FROM apalis_tasks"),
      RUNS * STEPS,
      "one task per step of every run",
    );
    assert.equal(
      await scalar(db, "SELECT count(*) AS n FROM apalis_tasks WHERE run_id IS NULL"),
      0,
    );

    // Executions: every task ran, at the step it is; re-runs only of steps running at the kill.
    assert.equal(
      await scalar(
        db,
        `SELECT count(*) AS n FROM apalis_tasks AS t
         WHERE NOT EXISTS (SELECT 1 FROM step_runs AS s
                           WHERE s.task_id = t.id AND s.run_id = t.run_id
                             AND s.step = coalesce(json_extract(t.step, '$.i'), 0))`,
      ),
      0,
      "tasks with no recorded execution of their step",
    );
    assert.equal(
      await scalar(
        db,
        "SELECT count(*) AS n FROM step_runs WHERE task_id NOT IN (SELECT id FROM apalis_tasks)",
      ),
      0,
      "executions of unknown tasks",
    );
    const reRunIds = await column(
      db,
      "SELECT task_id AS id FROM step_runs GROUP BY task_id HAVING count(*) > 1 ORDER BY task_id",
    );
    const retriedIds = await column(
      db,
      "SELECT id FROM apalis_tasks WHERE attempts > 1 ORDER BY id",
    );
    const reRuns = await scalar(db, "SELECT count(*) AS n FROM step_runs") - RUNS * STEPS;
    await t.step(
      `kill -9 after ${stepRunsAtKill} step executions (${doneAtKill} runs done, ${partwayAtKill} partway) left ${runningAtKill.length} running (in flight or claimed ahead); ${reRuns} re-runs`,
      () => {
        const running = new Set(runningAtKill);
        for (const id of reRunIds) {
          assert.ok(running.has(id), `step task ${id} ran twice but was not running at the kill`);
        }
        assert.ok(reRuns <= runningAtKill.length, `${reRuns} re-runs`);
        // A rescued step keeps the attempt its claim counted, whether or not it had started.
        assert.deepEqual(retriedIds, runningAtKill, "steps that needed a second attempt");
      },
    );
  } finally {
    await reap(children);
  }
});
