import assert from "node:assert/strict";
import { Task } from "../../mod.ts";
import { connectPostgres, PostgresStorage } from "../../postgres.ts";
import { pgTest, tempPostgres } from "../_postgres.ts";
import { DAG_RUNS_DDL, RUNS_DDL } from "./pg_worker.ts";
import {
  assertCleanExit,
  type Exit,
  exitOf,
  reap,
  spawnPgWorker,
  spawnReadyWorker,
} from "./_spawn.ts";

const EXIT_TIMEOUT_MS = 120_000;

pgTest(
  "4 worker processes drain 2,000 tasks on PostgreSQL, each task run exactly once",
  async (t) => {
    await using db = await tempPostgres();
    await db.pg.sql.unsafe(RUNS_DDL);
    const storage = new PostgresStorage<number>(db.pg, "many");
    const total = 2000;
    const ids = await storage.pushAll(
      Array.from({ length: total }, (_, n) => Task.builder(n).build()),
    );
    const names = ["w1", "w2", "w3", "w4"];
    const children = names.map((name) =>
      spawnPgWorker(db.url, name, ["--queue", "many", "--concurrency", "4", "--drain"])
    );
    let exits: Exit[];
    try {
      exits = await Promise.all(children.map((c, i) => exitOf(c, names[i]!, EXIT_TIMEOUT_MS)));
    } finally {
      await reap(children);
    }
    exits.forEach((exit, i) => assertCleanExit(exit, `worker ${names[i]}`));
    const [runs] = await db.pg.sql<{ n: number; distinct_: number; max: number }[]>`
    SELECT count(*) AS n, count(DISTINCT task_id) AS distinct_,
      coalesce(max(c), 0) AS max
    FROM runs, LATERAL (SELECT count(*) AS c FROM runs AS r WHERE r.task_id = runs.task_id) AS x`;
    assert.equal(runs!.distinct_, total, "tasks run");
    assert.equal(runs!.n, total, "executions: each task once");
    const done = await storage.waitFor(ids, { timeoutMs: 1000 });
    assert.ok(done.every((task) => task.status === "done" && task.attempts === 1));
    const perWorker = await db.pg.sql<{ worker: string; n: number }[]>`
    SELECT worker, count(*) AS n FROM runs GROUP BY worker ORDER BY worker`;
    await t.step(`per worker: ${perWorker.map((r) => `${r.worker}=${r.n}`).join(" ")}`, () => {
      assert.equal(perWorker.length, 4, "every process ran tasks");
    });
    const stats = await storage.stats("many");
    assert.equal(stats.done, total);
    const [counted] = await db.pg.sql<{ done: number }[]>`
    SELECT sum(done)::bigint AS done FROM apalis_throughput WHERE queue = 'many'`;
    assert.equal(counted!.done, total, "outcomes counted once each");
  },
);

pgTest(
  "an idle worker process with a 60 s poll starts a task pushed by another process within milliseconds (LISTEN/NOTIFY)",
  async (t) => {
    await using db = await tempPostgres();
    await db.pg.sql.unsafe(RUNS_DDL);
    const worker = spawnReadyWorker(db.url, "listener", ["--queue", "wake", "--poll-ms", "60000"]);
    try {
      await worker.ready;
      await new Promise((resolve) => setTimeout(resolve, 300)); // LISTEN is set up after idle
      // Another process: its own connection, as a producer on another host would have.
      const producer = await connectPostgres(db.url, { max: 1 });
      const latencies: number[] = [];
      try {
        const storage = new PostgresStorage<number>(producer, "wake");
        for (let i = 0; i < 10; i++) {
          const before = Date.now();
          const id = await storage.push(i);
          let started: number | undefined;
          const deadline = Date.now() + 5000;
          while (started === undefined && Date.now() < deadline) {
            const [row] = await db.pg.sql<{ started_ms: number }[]>`
            SELECT started_ms FROM runs WHERE task_id = ${id}`;
            started = row?.started_ms;
            if (started === undefined) await new Promise((resolve) => setTimeout(resolve, 2));
          }
          assert.ok(started !== undefined, `task ${i} did not start within 5 s`);
          latencies.push(started - before);
        }
      } finally {
        await producer.close();
      }
      latencies.sort((a, b) => a - b);
      await t.step(
        `push → start latency: p50 ${latencies[5]} ms, max ${latencies[9]} ms (poll: 60 s)`,
        () => {
          // A poll would take 60 s: anything near that means the notification was missed.
          assert.ok(latencies[9]! < 1000, `latencies ${latencies.join(", ")} ms`);
        },
      );
    } finally {
      worker.child.kill("SIGTERM");
      const exit = await worker.exited;
      assert.equal(exit.code, 0, exit.stderr);
      assert.equal(exit.stderr, "");
    }
  },
);

pgTest(
  "DagFlow on PostgreSQL enqueues and runs a fan-in node exactly once per run when worker processes complete its dependencies at once",
  async (t) => {
    await using db = await tempPostgres();
    await db.pg.sql.unsafe(DAG_RUNS_DDL).simple();
    const storage = new PostgresStorage<unknown>(db.pg, "dag");
    const total = 100;
    const runIds: string[] = [];
    for (let n = 1; n <= total; n++) runIds.push(await storage.startFanOut([n, n, n]));
    const names = ["p1", "p2", "p3"];
    const children = names.map((name) =>
      spawnPgWorker(db.url, name, [
        "--mode",
        "dag",
        "--queue",
        "dag",
        "--concurrency",
        "2",
        "--sleep-ms",
        "5",
        "--buffer-size",
        "1",
        "--poll-ms",
        "10",
        "--drain",
      ])
    );
    let exits: Exit[];
    try {
      exits = await Promise.all(children.map((c, i) => exitOf(c, names[i]!, EXIT_TIMEOUT_MS)));
    } finally {
      await reap(children);
    }
    exits.forEach((exit, i) => assertCleanExit(exit, `worker ${names[i]}`));
    for (const [index, runId] of runIds.entries()) {
      const n = index + 1;
      const run = await storage.workflowRun(runId);
      assert.equal(run?.status, "done", `run ${n}: ${JSON.stringify(run?.error)}`);
      assert.equal(run?.result, `${2 * n}/${5 * n}/${3 * n}`, `result of run ${n}`);
    }
    const [counts] = await db.pg.sql<{ collectors: number; fanins: number; reruns: number }[]>`
    SELECT
      (SELECT count(*) FROM apalis_tasks WHERE queue = 'dag' AND step::jsonb ->> 'node' = 'collector')
        AS collectors,
      (SELECT count(*) FROM fanin_runs) AS fanins,
      (SELECT count(*) FROM apalis_tasks WHERE queue = 'dag' AND attempts <> 1) AS reruns`;
    assert.equal(counts!.collectors, total, "collector tasks: one per run");
    assert.equal(counts!.fanins, total, "collector executions: one per run");
    assert.equal(counts!.reruns, 0, "tasks that started more than once");
    const [split] = await db.pg.sql<{ n: number }[]>`
    SELECT count(DISTINCT l.run_id) AS n FROM dag_node_runs AS l JOIN dag_node_runs AS r
      ON l.run_id = r.run_id AND l.node <> 'collector' AND r.node <> 'collector'
        AND l.pid <> r.pid`;
    await t.step(`runs whose two dependencies ran in different processes: ${split!.n}`, () => {
      assert.ok(split!.n > 0, "no run had its dependencies completed by different processes");
    });
  },
);
