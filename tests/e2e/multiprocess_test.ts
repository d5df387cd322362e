import assert from "node:assert/strict";
import { type Database, retryBusy, SqliteStorage, Task } from "../../mod.ts";
import { tempDatabase } from "../_helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const WORKER = new URL("./worker_process.ts", import.meta.url).pathname;
const RUNS_DDL = `CREATE TABLE IF NOT EXISTS runs (
  seq     INTEGER PRIMARY KEY,
  task_id TEXT NOT NULL,
  worker  TEXT NOT NULL,
  pid     INTEGER NOT NULL,
  attempt INTEGER NOT NULL
)`;
const EXIT_TIMEOUT_MS = 120_000;

/** Starts `deno run -A tests/e2e/worker_process.ts` on `path`. */
function spawnWorker(path: string, name: string, extra: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", WORKER, "--db", path, "--name", name, ...extra],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

interface Exit {
  code: number;
  signal: Deno.Signal | null;
  stderr: string;
}

/** Waits for a child to exit; kills it and throws if it takes longer than `timeoutMs`. */
async function exitOf(child: Deno.ChildProcess, what: string, timeoutMs: number): Promise<Exit> {
  const output = child.output();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  const first = await Promise.race([output, timedOut]);
  clearTimeout(timer);
  if (first === "timeout") {
    child.kill("SIGKILL");
    const late = await output;
    throw new Error(
      `${what} did not exit within ${timeoutMs} ms; stderr: ${
        new TextDecoder().decode(late.stderr)
      }`,
    );
  }
  return {
    code: first.code,
    signal: first.signal,
    stderr: new TextDecoder().decode(first.stderr),
  };
}

/** Kills children that are still running (after a failed assertion) and reaps them. */
async function reap(children: Deno.ChildProcess[]): Promise<void> {
  await Promise.all(children.map(async (child) => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    try {
      await child.output();
    } catch {
      // Already consumed by exitOf().
    }
  }));
}

function scalar(db: Database, sql: string, params: (string | number)[] = []): Promise<number> {
  return retryBusy(db, () => db.get<{ n: number }>(sql, params)!.n);
}

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
  assert.equal(
    await scalar(db, "SELECT count(DISTINCT task_id) AS n FROM runs"),
    total,
    "distinct task ids in runs",
  );
  assert.equal(
    await scalar(
      db,
      "SELECT count(*) AS n FROM runs WHERE task_id NOT IN (SELECT id FROM apalis_tasks)",
    ),
    0,
    "runs of unknown tasks",
  );
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
