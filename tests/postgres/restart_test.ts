import assert from "node:assert/strict";
import { Config, Task, WorkerBuilder } from "../../mod.ts";
import { connectPostgres, PostgresStorage } from "../../postgres.ts";
import { waitUntil } from "../_helpers.ts";
import { pgTest, tempPostgres } from "../_postgres.ts";
import { RUNS_DDL } from "./pg_worker.ts";
import { type Exit, exitOf, reap, spawnPgWorker } from "./_spawn.ts";

pgTest(
  "a PostgreSQL restart mid-drain: worker processes survive, every task ends done, none is left running",
  async (t) => {
    await using db = await tempPostgres();
    await db.pg.sql.unsafe(RUNS_DDL);
    const storage = new PostgresStorage<number>(db.pg, "restart");
    const total = 3000;
    const ids = await storage.pushAll(
      Array.from({ length: total }, (_, n) => Task.builder(n).build()),
    );
    const names = ["r1", "r2", "r3"];
    const children = names.map((name) =>
      spawnPgWorker(db.url, name, [
        "--queue",
        "restart",
        "--concurrency",
        "4",
        "--sleep-ms",
        "3",
        "--drain",
      ])
    );
    let exits: Exit[];
    let doneAtRestart = 0;
    try {
      await waitUntil(
        async () => {
          doneAtRestart = (await storage.stats("restart")).done;
          return doneAtRestart >= total / 5;
        },
        "a fifth of the tasks to finish",
        60_000,
      );
      await db.cluster.restart();
      exits = await Promise.all(children.map((c, i) => exitOf(c, names[i]!, 120_000)));
    } finally {
      await reap(children);
    }
    for (const [i, exit] of exits.entries()) {
      assert.equal(exit.code, 0, `worker ${names[i]} exited ${exit.code}: ${exit.stderr}`);
      assert.doesNotMatch(exit.stderr, /WorkerFatalError|Uncaught/, `worker ${names[i]}`);
    }
    const stats = await storage.stats("restart");
    assert.equal(stats.done, total, JSON.stringify(stats));
    assert.equal(stats.running + stats.queued + stats.pending + stats.failed, 0);
    const [runs] = await db.pg.sql<{ n: number; tasks: number }[]>`
    SELECT count(*) AS n, count(DISTINCT task_id) AS tasks FROM runs`;
    assert.equal(runs!.tasks, total, "every task ran");
    const outages = exits.filter((exit) => exit.stderr.length > 0).length;
    await t.step(
      `${doneAtRestart} done at the restart; ${
        runs!.n - total
      } re-runs; ${outages} of 3 workers reported the outage`,
      () => {
        // A re-run needs a flush whose commit went unanswered: at most what a worker holds.
        assert.ok(runs!.n - total <= 3 * (4 + 400));
      },
    );
    const done = await storage.waitFor(ids, { timeoutMs: 1000 });
    assert.equal(done.length, total);
  },
);

pgTest(
  "while PostgreSQL is down an in-process worker reports errors and goes on; operations reject with a clear error; after it is back the queue drains",
  async () => {
    await using db = await tempPostgres();
    const storage = new PostgresStorage<number>(db.pg, "outage");
    const first = await storage.pushAll([Task.builder(1).build()]);
    const errors: unknown[] = [];
    const worker = new WorkerBuilder("survivor")
      .backend(storage)
      .handleSignals(false)
      .onEvent((_ctx, event) => {
        if (event.type === "error") errors.push(event.error);
      })
      .build((n) => n);
    const running = worker.run();
    try {
      await storage.waitFor(first, { timeoutMs: 10_000 });
      await db.cluster.stop();
      try {
        await assert.rejects(
          () => storage.push(2),
          (error: unknown) =>
            error instanceof Error && error.name === "PostgresOperationError" &&
            /Cannot push task to queue 'outage' on PostgreSQL at postgres:\/\//.test(error.message),
        );
        assert.equal(storage.backend.closed, false);
        await new Promise((resolve) => setTimeout(resolve, 500));
      } finally {
        await db.cluster.resume();
      }
      // The client reconnects after a short backoff: pushes fail until then, then succeed.
      let later: string | undefined;
      await waitUntil(
        async () => {
          later = await storage.push(3).catch(() => undefined);
          return later !== undefined;
        },
        "a push to succeed once PostgreSQL is back",
        15_000,
      );
      const [task] = await storage.waitFor([later!], { timeoutMs: 15_000 });
      assert.equal(task?.status, "done");
    } finally {
      await worker.stop();
      await running;
    }
    assert.equal(worker.inFlight, 0);
  },
);

pgTest(
  "after a PostgreSQL restart, an idle worker with a 60 s poll still wakes at once for a push from another connection (LISTEN again)",
  async () => {
    await using db = await tempPostgres();
    const storage = new PostgresStorage<number>(
      db.pg,
      new Config("relisten").withPollInterval(60_000),
    );
    let idle = false;
    const started: number[] = [];
    const worker = new WorkerBuilder("relistener")
      .backend(storage)
      .handleSignals(false)
      .onEvent((_ctx, event) => {
        if (event.type === "idle") idle = true;
      })
      .build(() => void started.push(Date.now()));
    const running = worker.run();
    try {
      await waitUntil(() => idle, "the worker to be idle");
      await new Promise((resolve) => setTimeout(resolve, 300)); // LISTEN is set up
      await db.cluster.restart();
      await new Promise((resolve) => setTimeout(resolve, 1500)); // the client listens again
      const producer = await connectPostgres(db.url, { max: 1 });
      try {
        const before = Date.now();
        await new PostgresStorage<number>(producer, "relisten").push(1);
        await waitUntil(() => started.length === 1, "the pushed task to start", 5_000);
        assert.ok(started[0]! - before < 5_000);
      } finally {
        await producer.close();
      }
    } finally {
      await worker.stop();
      await running;
    }
  },
);
