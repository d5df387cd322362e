import assert from "node:assert/strict";
import { SqliteStorage, Task } from "../../mod.ts";
import { tempDatabase } from "../_helpers.ts";
import { type Exit, exitOf, reap, spawnWorker } from "./processes.ts";
import { assertRunsCoverTasks, RUNS_DDL, scalar } from "./_runs.ts";

const EXIT_TIMEOUT_MS = 120_000;

Deno.test("Worker.run() runs each of 20,000 tasks exactly once when 4 processes drain one file", async (t) => {
  await using tmp = await tempDatabase();
  const { db, path } = tmp;
  db.exec(RUNS_DDL);
  const storage = new SqliteStorage<{ n: number }>(db, "mp");
  const total = 20_000;
  const ids = await storage.pushAll(
    Array.from({ length: total }, (_, n) => Task.builder({ n }).build()),
  );
  assert.equal(new Set(ids).size, total);

  const names = ["w1", "w2", "w3", "w4"];
  const children = names.map((name) =>
    spawnWorker(path, name, ["--queue", "mp", "--concurrency", "16", "--drain"])
  );
  let exits: Exit[];
  try {
    exits = await Promise.all(
      children.map((child, i) => exitOf(child, `worker ${names[i]}`, EXIT_TIMEOUT_MS)),
    );
  } finally {
    await reap(children);
  }

  exits.forEach((exit, i) => {
    assert.equal(
      exit.code,
      0,
      `worker ${names[i]} exited with ${exit.code} (${exit.signal}): ${exit.stderr}`,
    );
    assert.doesNotMatch(exit.stderr, /locked|SQLITE_BUSY|busy|error/i, `worker ${names[i]}`);
    assert.equal(exit.stderr.trim(), "", `worker ${names[i]} printed to stderr`);
  });

  const counts = await storage.stats("mp");
  assert.deepEqual(
    { done: counts.done, total: counts.total },
    { done: total, total },
    `not every task is done: ${JSON.stringify(counts)}`,
  );
  assert.equal(await scalar(db, "SELECT count(*) AS n FROM runs"), total, "runs rows");
  await assertRunsCoverTasks(db, total);
  assert.equal(
    await scalar(db, "SELECT count(*) AS n FROM apalis_tasks WHERE queue = 'mp' AND attempts != 1"),
    0,
    "tasks that started more than once",
  );
  assert.equal(
    await scalar(db, "SELECT count(*) AS n FROM apalis_workers WHERE stopped_at IS NULL"),
    0,
    "workers left registered as running",
  );

  const perWorker = db.all<{ worker: string; n: number; pids: number; pid: number }>(
    `SELECT worker, count(*) AS n, count(DISTINCT pid) AS pids, min(pid) AS pid
     FROM runs GROUP BY worker ORDER BY worker`,
  );
  const distribution = perWorker.map(({ worker, n }) => `${worker}=${n}`).join(" ");
  await t.step(`distribution of runs: ${distribution}`, () => {
    for (const { worker, pids, pid } of perWorker) {
      assert.equal(pids, 1, `pids of ${worker}`);
      assert.equal(pid, children[names.indexOf(worker)]?.pid, `pid of ${worker}`);
    }
    assert.deepEqual(
      perWorker.map(({ worker }) => worker),
      names,
      `every process should have done some work: ${distribution}`,
    );
  });
});
