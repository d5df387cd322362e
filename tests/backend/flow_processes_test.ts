/**
 * Conformance, across processes: a queue's limits and pause hold for worker processes
 * (`worker_child.ts`) together. Each handler run is recorded by the child (start and end, in one
 * write(2) per line), and the maxima actually reached are measured from those records (running
 * at once) or from the claim times the database recorded (starts per window), then compared with
 * the limits.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Task } from "../../mod.ts";
import { type ChildWorker, readSpans, spawnChild, stopChild } from "./_child.ts";
import { backendTest, type TestDatabase, waitUntil } from "./_suite.ts";
import { maxInAnyWindow, maxOverlap } from "./spans.ts";

/** Liveness bound for a drain (not a speed assertion). */
const DRAIN_TIMEOUT_MS = 90_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts `n` worker processes on `queue` recording their handler runs; returns them and the file. */
async function children(
  db: TestDatabase,
  queue: string,
  n: number,
  args: string[],
): Promise<{ workers: ChildWorker[]; spans: string; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "apalis_spans_" });
  const spans = `${dir}/spans.log`;
  const workers = Array.from({ length: n }, (_, i) =>
    spawnChild(db.location, `${queue}-${i + 1}`, [
      "--queue",
      queue,
      "--poll-ms",
      "20",
      "--spans",
      spans,
      ...args,
    ]));
  await Promise.all(workers.map((child) => child.ready));
  return { workers, spans, dir };
}

async function drained(db: TestDatabase, queue: string, total: number): Promise<void> {
  const admin = db.admin();
  await waitUntil(
    async () => (await admin.stats(queue)).done === total,
    `all ${total} tasks of '${queue}' to be done`,
    DRAIN_TIMEOUT_MS,
  );
}

backendTest(
  "cross-process: 3 worker processes of concurrency 8 under `concurrency: 5` never run more than 5 at once",
  async (db) => {
    const queue = "capped";
    const storage = db.storage<{ n: number }>(queue);
    await storage.setLimits({ concurrency: 5 });
    const { workers, spans, dir } = await children(db, queue, 3, [
      "--concurrency",
      "8",
      "--sleep-ms",
      "15",
    ]);
    try {
      const total = 200;
      await storage.pushAll(Array.from({ length: total }, (_, n) => new Task({ n })));
      await drained(db, queue, total);
      await Promise.all(workers.map(stopChild));
      const runs = await readSpans(spans);
      assert.equal(runs.length, total, "every task ran once");
      assert.equal(maxOverlap(runs), 5, "5 ran at once, never more");
    } finally {
      await Promise.all(workers.map((child) => child[Symbol.asyncDispose]()));
      await Deno.remove(dir, { recursive: true });
    }
  },
);

backendTest(
  "cross-process: `groupConcurrency: 1` runs one task at a time per group, groups side by side",
  async (db) => {
    const queue = "grouped";
    const storage = db.storage<{ group: string; n: number }>(queue);
    await storage.setLimits({ groupConcurrency: 1 });
    const { workers, spans, dir } = await children(db, queue, 3, [
      "--concurrency",
      "4",
      "--sleep-ms",
      "10",
    ]);
    try {
      const groups = ["g1", "g2", "g3", "g4", "g5", "g6"];
      // Group by group: each group's tasks are together in claim order.
      const tasks = groups.flatMap((group) =>
        Array.from({ length: 15 }, (_, n) => new Task({ group, n }, { group }))
      );
      await storage.pushAll(tasks);
      await drained(db, queue, tasks.length);
      await Promise.all(workers.map(stopChild));
      const runs = await readSpans(spans);
      assert.equal(runs.length, tasks.length, "every task ran once");
      for (const group of groups) {
        assert.equal(maxOverlap(runs.filter((run) => run.key === group)), 1, `group ${group}`);
      }
      assert.ok(maxOverlap(runs) >= 3, `groups ran side by side: ${maxOverlap(runs)} at most`);
    } finally {
      await Promise.all(workers.map((child) => child[Symbol.asyncDispose]()));
      await Deno.remove(dir, { recursive: true });
    }
  },
);

backendTest(
  "cross-process: 3 worker processes under `rate: 50 per 1,000 ms` start at most 50 in any second",
  async (db) => {
    const queue = "rated";
    const storage = db.storage<{ n: number }>(queue);
    await storage.setLimits({ rate: { limit: 50, perMs: 1_000 } });
    const { workers, dir } = await children(db, queue, 3, ["--concurrency", "8"]);
    try {
      const total = 160;
      const ids = await storage.pushAll(Array.from({ length: total }, (_, n) => new Task({ n })));
      await drained(db, queue, total);
      await Promise.all(workers.map(stopChild));
      const tasks = await storage.waitFor(ids);
      assert.ok(tasks.every((task) => task.attempts === 1));
      // The claim times the database recorded with each task: when each one started.
      const claims = tasks.map((task) => task.lockAt!);
      assert.equal(maxInAnyWindow(claims, 1_000), 50, "50 started in a second, never more");
    } finally {
      await Promise.all(workers.map((child) => child[Symbol.asyncDispose]()));
      await Deno.remove(dir, { recursive: true });
    }
  },
);

backendTest(
  "cross-process: a pause from another process stops every worker within a second; a resume restarts them within a second",
  async (db) => {
    const queue = "pausable";
    const storage = db.storage<{ n: number }>(queue);
    const { workers, spans, dir } = await children(db, queue, 3, [
      "--concurrency",
      "4",
      "--sleep-ms",
      "2",
    ]);
    try {
      const total = 4_000;
      await storage.pushAll(Array.from({ length: total }, (_, n) => new Task({ n })));
      await waitUntil(async () => (await storage.stats()).done >= 300, "300 tasks done");
      await storage.pause();
      const pausedAt = Date.now();
      await sleep(1_500);
      const paused = await storage.stats();
      assert.equal(paused.running + paused.queued, 0, `nothing held: ${JSON.stringify(paused)}`);
      assert.ok(paused.pending > 0, "tasks wait");
      const beforeResume = await readSpans(spans);
      assert.equal(beforeResume.length, paused.done, "every start finished");
      const late = beforeResume.filter((run) => run.start > pausedAt + 1_000);
      assert.deepEqual(late, [], "no task started more than a second after the pause");

      const resumedAt = Date.now();
      await storage.resume();
      await drained(db, queue, total);
      await Promise.all(workers.map(stopChild));
      const runs = await readSpans(spans);
      assert.equal(runs.length, total, "every task ran once");
      const firstAfter = Math.min(
        ...runs.filter((run) => run.start >= resumedAt).map((run) => run.start),
      );
      assert.ok(
        firstAfter - resumedAt <= 1_000,
        `a worker started within a second of the resume (${firstAfter - resumedAt} ms)`,
      );
    } finally {
      await Promise.all(workers.map((child) => child[Symbol.asyncDispose]()));
      await Deno.remove(dir, { recursive: true });
    }
  },
);
