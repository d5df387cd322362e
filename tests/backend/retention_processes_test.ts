/**
 * Conformance, across processes: 4 worker processes (`retention_child.ts`) of one queue with a
 * short retention over a database with thousands of expired tasks. Every expired task is
 * deleted, once (the batches' counts add up to them), none that has not expired is touched, and
 * the queue's lease lets one process delete at a time: the batches, each stamped while its
 * transaction held the lease, never overlap. The first holder is stopped after its first batch
 * and a second wave of expired tasks comes after it has gone, so at least two processes delete.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Config, type Storage, Task, WorkerBuilder } from "../../mod.ts";
import { spawnChild, stopChild } from "./_child.ts";
import { readBatches } from "./retention_child.ts";
import { backendTest, start, waitUntil } from "./_suite.ts";

/** Liveness bound (not a speed assertion). */
const TIMEOUT_MS = 120_000;
const CHILD = new URL("./retention_child.ts", import.meta.url).pathname;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const BATCH = 100;
const KEEP = { done: "forever", killed: "forever" } as const;

/** Pushes `n` tasks and runs them to `done` with a worker whose storage has `storage`'s clock. */
async function finishMany(storage: Storage<number>, n: number): Promise<string[]> {
  const ids = await storage.pushAll(Array.from({ length: n }, (_, i) => new Task(i)));
  const worker = new WorkerBuilder(`filler-${crypto.randomUUID()}`).backend(storage)
    .concurrency(8).handleSignals(false).build((x) => x);
  await using _running = start(worker);
  await storage.waitFor(ids, { timeoutMs: TIMEOUT_MS });
  return ids;
}

/** Pushes `n` tasks due in a year (no worker claims them) and kills them. */
async function killMany(storage: Storage<number>, n: number): Promise<string[]> {
  const ids = await storage.pushAll(
    Array.from({ length: n }, (_, i) => new Task(i, { runAfter: 365 * DAY })),
  );
  for (const id of ids) await storage.kill(id);
  return ids;
}

backendTest(
  "cross-process: 4 worker processes delete every expired task once, one lease holder at a time",
  async (db) => {
    const queue = "retention-multi";
    const config = new Config(queue).withPollInterval(5).setRetention(KEEP);
    // Finished by this host's clock: expired for the children, whose clocks run a day ahead
    // (done kept 12h, killed 20h).
    const now = db.storage<number>(config);
    // Finished two days ahead: not expired for the children.
    const later = db.storage<number>(config, { clock: { now: () => Date.now() + 2 * DAY } });
    const expiredDone = await finishMany(now, 3000);
    const freshDone = await finishMany(later, 150);
    const freshKilled = await killMany(later, 150);

    const dir = await Deno.makeTempDir({ prefix: "apalis_retention_" });
    const record = `${dir}/batches.log`;
    const args = [
      ...["--queue", queue, "--done", "12h", "--killed", "20h", "--every", "100ms"],
      ...["--batch", String(BATCH), "--clock-offset-ms", String(DAY), "--record", record],
    ];
    const children = ["r1", "r2", "r3", "r4"].map((name) =>
      spawnChild(db.location, name, args, CHILD)
    );
    try {
      await Promise.all(children.map((child) => child.ready));
      await waitUntil(
        async () => (await readBatches(record)).length > 0,
        "a first batch",
        TIMEOUT_MS,
      );
      const first = (await readBatches(record))[0]!.holder;
      await stopChild(children.find((child) => child.name === first)!);
      // A second wave, after the first holder has gone: the others must delete it.
      const expiredKilled = await killMany(now, 500);

      const kept = freshDone.length + freshKilled.length;
      await waitUntil(
        async () => (await now.stats(queue)).total === kept,
        "every expired task to be deleted",
        TIMEOUT_MS,
      );
      await Promise.all(children.filter((child) => child.name !== first).map(stopChild));

      const batches = await readBatches(record);
      const deleted = batches.reduce((sum, batch) => sum + batch.tasks, 0);
      assert.equal(deleted, expiredDone.length + expiredKilled.length, "each deleted once");
      assert.ok(batches.every((batch) => batch.tasks >= 1 && batch.tasks <= BATCH));
      assert.ok(batches.every((batch) => batch.runs === 0));
      const left = await now.listTasks({ queue, pageSize: 1000 });
      assert.deepEqual(
        left.map((task) => task.id).sort(),
        [...freshDone, ...freshKilled].sort(),
        "the tasks that had not expired are all there",
      );
      const counts = await now.stats(queue);
      assert.deepEqual([counts.done, counts.killed], [freshDone.length, freshKilled.length]);

      const holders = new Set(batches.map((batch) => batch.holder));
      assert.ok(holders.size >= 2, `batches by ${[...holders].join(", ")}`);
      assert.ok(holders.has(first));
      const inOrder = [...batches].sort((a, b) => a.heldFrom - b.heldFrom);
      for (let i = 1; i < inOrder.length; i++) {
        const [before, after] = [inOrder[i - 1]!, inOrder[i]!];
        assert.ok(
          after.heldFrom >= before.heldTo,
          `batches overlap: ${JSON.stringify(before)} and ${JSON.stringify(after)}`,
        );
      }
    } finally {
      for (const child of children) await child[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
