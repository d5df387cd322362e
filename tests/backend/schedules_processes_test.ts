/**
 * Conformance, across processes: three worker processes (`worker_child.ts`) of one queue with a
 * schedule that ticks every second. Each of them looks at the schedule at every tick; the
 * database lets one enqueue each tick. Every tick of the window has exactly one task, run once
 * (handler starts are recorded in a file, outside the database).
 *
 * @module
 */
import assert from "node:assert/strict";
import type { CronMeta } from "../../mod.ts";
import { countBy, readRecords, spawnChild, stopChild } from "./_child.ts";
import { backendTest, waitUntil } from "./_suite.ts";

/** Liveness bound (not a speed assertion). */
const TIMEOUT_MS = 60_000;
const TICKS = 5;

backendTest(
  `cross-process: 3 worker processes enqueue each tick of a per-second schedule once (${TICKS}+ ticks)`,
  async (db) => {
    const queue = "cron-multi";
    const dir = await Deno.makeTempDir({ prefix: "apalis_cron_records_" });
    const record = `${dir}/starts.log`;
    const children = ["c1", "c2", "c3"].map((name) =>
      spawnChild(db.location, name, ["--queue", queue, "--record", record])
    );
    try {
      await Promise.all(children.map((child) => child.ready));
      // Without a clock: SQLite uses this host's, PostgreSQL the server's time.
      const storage = db.storage<string>(queue);
      await storage.schedule("every-second", "* * * * * *", "tick", { catchUp: "all" });
      const [schedule] = await storage.listSchedules();
      const first = schedule!.nextTick!;
      await waitUntil(
        async () => (await storage.stats(queue)).done >= TICKS,
        `${TICKS} ticks to be run`,
        TIMEOUT_MS,
      );
      assert.equal(await storage.unschedule("every-second"), true);
      await waitUntil(
        async () => {
          const counts = await storage.stats(queue);
          return counts.done === counts.total;
        },
        "the last ticks to be run",
        TIMEOUT_MS,
      );
      await Promise.all(children.map(stopChild));

      const tasks = await storage.listTasks({ queue, pageSize: 1000 });
      const ticks = tasks.map((task) => {
        const cron = task.meta.cron as CronMeta;
        assert.equal(task.id, `cron:every-second:${cron.tick}`);
        assert.equal(cron.schedule, "every-second");
        assert.equal(task.status, "done");
        assert.equal(task.attempts, 1);
        return cron.tick;
      }).sort((a, b) => a - b);
      assert.ok(ticks.length >= TICKS, `${ticks.length} ticks`);
      assert.equal(ticks[0], first, "from the first tick after schedule()");
      assert.deepEqual(
        ticks,
        ticks.map((_, i) => first + i * 1000),
        "every second of the window has exactly one task",
      );
      const starts = await readRecords(record);
      const perTask = countBy(starts, (start) => start.taskId);
      assert.equal(perTask.size, ticks.length, "every tick's task ran");
      assert.deepEqual([...perTask].filter(([, n]) => n !== 1), [], "none ran twice");
      assert.ok(
        starts.every((start) => ["c1", "c2", "c3"].includes(start.worker)),
        "run by the worker processes",
      );
    } finally {
      for (const child of children) await child[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
