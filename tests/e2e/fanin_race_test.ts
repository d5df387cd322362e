import assert from "node:assert/strict";
import { SqliteStorage } from "../../mod.ts";
import { tempDatabase } from "../_helpers.ts";
import { assertCleanExit, type Exit, exitOf, reap } from "./processes.ts";
import { scalar } from "./_runs.ts";
import { DAG_RUNS_DDL } from "./dag_process.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const DAG_WORKER = new URL("./dag_process.ts", import.meta.url).pathname;
const EXIT_TIMEOUT_MS = 60_000;

/** Starts `deno run -A tests/e2e/dag_process.ts` on `path`. */
function spawnDagWorker(path: string, name: string, extra: string[] = []): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", DAG_WORKER, "--db", path, "--name", name, ...extra],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

Deno.test("DagFlow enqueues and runs a fan-in node exactly once per run when two worker processes complete its dependencies", async (t) => {
  await using tmp = await tempDatabase();
  const { db, path } = tmp;
  db.exec(DAG_RUNS_DDL);
  const storage = new SqliteStorage<unknown>(db, "dag");
  const total = 100;
  const runIds: string[] = [];
  for (let n = 1; n <= total; n++) runIds.push(await storage.startFanOut([n, n]));

  const names = ["p1", "p2"];
  const children = names.map((name) =>
    spawnDagWorker(path, name, ["--concurrency", "1", "--sleep-ms", "5"])
  );
  let exits: Exit[];
  try {
    exits = await Promise.all(
      children.map((child, i) => exitOf(child, `worker ${names[i]}`, EXIT_TIMEOUT_MS)),
    );
  } finally {
    await reap(children);
  }
  exits.forEach((exit, i) => assertCleanExit(exit, `worker ${names[i]}`));

  // Every run: done with the right result, its collector enqueued once and run once.
  for (const [index, runId] of runIds.entries()) {
    const n = index + 1;
    const run = await storage.workflowRun(runId);
    assert.equal(run?.status, "done", `run ${n}: ${JSON.stringify(run?.error)}`);
    assert.equal(run?.result, `${2 * n}/${3 * n}`, `result of run ${n}`);
    assert.equal(
      await scalar(
        db,
        `SELECT count(*) AS n FROM apalis_tasks
         WHERE run_id = ? AND json_extract(step, '$.node') = 'collector'`,
        [runId],
      ),
      1,
      `collector tasks of run ${n}`,
    );
    assert.equal(
      await scalar(db, "SELECT count(*) AS n FROM fanin_runs WHERE run_id = ?", [runId]),
      1,
      `collector executions of run ${n}`,
    );
  }
  assert.equal(await scalar(db, "SELECT count(*) AS n FROM fanin_runs"), total, "fanin_runs rows");
  assert.equal(
    await scalar(
      db,
      "SELECT count(*) AS n FROM apalis_tasks WHERE queue = 'dag' AND attempts != 1",
    ),
    0,
    "tasks that started more than once",
  );
  assert.equal(
    await scalar(db, "SELECT count(*) AS n FROM apalis_tasks WHERE queue = 'dag'"),
    total * 4,
    "tasks: one entry task and three nodes per run",
  );

  // Both processes did work, and they split dependencies of the same runs between them.
  const perPid = db.all<{ pid: number; n: number }>(
    "SELECT pid, count(*) AS n FROM dag_node_runs GROUP BY pid ORDER BY pid",
  );
  const split = await scalar(
    db,
    `SELECT count(*) AS n FROM dag_node_runs AS l JOIN dag_node_runs AS r
       ON l.run_id = r.run_id AND l.node = 'left' AND r.node = 'right' AND l.pid != r.pid`,
  );
  const distribution = perPid.map(({ pid, n }) => `pid ${pid}=${n}`).join(" ");
  await t.step(`node executions: ${distribution}; runs split across processes: ${split}`, () => {
    assert.deepEqual(
      perPid.map(({ pid }) => pid).sort(),
      children.map((child) => child.pid).sort(),
      `every process should have run nodes: ${distribution}`,
    );
    assert.ok(split > 0, "no run had its two dependencies completed by different processes");
  });
});
