/**
 * Soak: one worker process drains 1,000,000 no-op tasks; its resident memory after 1,000,000
 * must be within 20% of what it was after 100,000 (no per-task leak). Run by `deno task soak`;
 * not part of `deno task test` (the file name does not end in `_test.ts`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { SqliteStorage, Task } from "../../mod.ts";
import { tempDatabase } from "../_helpers.ts";
import { assertCleanExit, exitOf, reap, spawnWorker } from "../e2e/processes.ts";

const TOTAL = 1_000_000;
const CHUNK = 10_000;
const SAMPLES = [100_000, 250_000, 500_000, 750_000, 1_000_000];

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

Deno.test("Worker.run() keeps its RSS after 1,000,000 tasks within 20% of its RSS after 100,000", async (t) => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<{ n: number }>(tmp.db, "memory");
  for (let from = 0; from < TOTAL; from += CHUNK) {
    await storage.pushAll(
      Array.from({ length: CHUNK }, (_, i) => Task.builder({ n: from + i }).build()),
    );
  }
  const started = Date.now();
  // The worker collects garbage before each sample: the numbers are live memory, not GC timing.
  // V8 grows its young generation (to 16 MB semi-spaces) in doublings while allocation stays
  // high: with its default factor the growth ended right about 100,000 tasks here (RSS 71 MiB at
  // 25,000, 142 at 100,000, then 142-144 to 1,000,000), so the first sample moved with the
  // machine's speed (+19 % to +33 % against the last on one day). Growing it 8x per step reaches
  // the same size by 50,000; the samples then compare the library's steady state.
  const child = spawnWorker(
    tmp.path,
    "memory",
    [
      "--queue",
      "memory",
      "--concurrency",
      "16",
      "--no-runs",
      "--drain",
      "--memory-at",
      SAMPLES.join(","),
    ],
    ["--v8-flags=--expose-gc,--semi-space-growth-factor=8"],
  );
  let stdout: string;
  try {
    const exit = await exitOf(child, "the memory worker", 1_800_000);
    assertCleanExit(exit, "the memory worker");
    stdout = exit.stdout;
  } finally {
    await reap([child]);
  }
  const seconds = (Date.now() - started) / 1000;
  const counts = await storage.stats("memory");
  assert.equal(counts.done, TOTAL, `every task should be done: ${JSON.stringify(counts)}`);

  const samples = new Map<number, { rss: number; heapUsed: number }>();
  for (const line of stdout.split("\n").filter((line) => line !== "")) {
    const sample = JSON.parse(line) as { tasks: number; rss: number; heapUsed: number };
    samples.set(sample.tasks, sample);
  }
  assert.deepEqual([...samples.keys()], SAMPLES, `memory samples printed: ${stdout}`);
  const first = samples.get(100_000)!;
  const last = samples.get(TOTAL)!;
  const rssChange = (last.rss - first.rss) / first.rss;
  const heapChange = (last.heapUsed - first.heapUsed) / first.heapUsed;
  const percent = (change: number) => `${change >= 0 ? "+" : ""}${(change * 100).toFixed(1)}%`;
  const curve = SAMPLES.map((n) => `${n / 1000}k ${mib(samples.get(n)!.rss)}`).join(", ");
  await t.step(
    `RSS ${mib(first.rss)} MiB after 100,000 tasks, ${mib(last.rss)} MiB after 1,000,000 (${
      percent(rssChange)
    }); JS heap in use ${mib(first.heapUsed)} → ${mib(last.heapUsed)} MiB (${
      percent(heapChange)
    }); RSS curve ${curve} MiB; drained in ${seconds.toFixed(0)} s`,
    () => {
      assert.ok(Math.abs(rssChange) <= 0.2, `RSS changed by ${percent(rssChange)}`);
      // After a full GC: a leak of even 10 bytes a task would add 9 MB here.
      assert.ok(Math.abs(heapChange) <= 0.2, `JS heap in use changed by ${percent(heapChange)}`);
    },
  );
});
