/**
 * Conformance: pause and resume, and a queue's limits (rate, concurrency, groupConcurrency),
 * enforced by the database's claim. Handlers count what runs at once themselves; the starts per
 * window are read from the claim times the database recorded (`lockAt`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { Config, type Storage, Task, WorkerBuilder } from "../../mod.ts";
import { backendTest, start, waitUntil } from "./_suite.ts";
import { maxInAnyWindow, maxOverlap, type Span } from "./spans.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A worker on `storage` whose handler runs `handler`; started, stopped by disposing. */
function worker<T>(
  storage: Storage<T>,
  name: string,
  concurrency: number,
  handler: (args: T) => unknown,
  onIdle?: () => void,
) {
  return start(
    new WorkerBuilder(name)
      .backend(storage)
      .concurrency(concurrency)
      .handleSignals(false)
      .onEvent((_ctx, event) => {
        if (event.type === "idle") onIdle?.();
      })
      .build(handler),
  );
}

backendTest("pause: pushes succeed, no worker starts a task until resume", async (db) => {
  const storage = db.storage<number>(new Config("paused").withPollInterval(20));
  const flow = await storage.pause();
  assert.deepEqual(flow, { paused: true, limits: {} });
  assert.equal(await storage.isPaused(), true);
  const ids = await storage.pushAll([1, 2, 3, 4, 5].map((n) => new Task(n)));
  const ran: number[] = [];
  let idles = 0;
  await using _worker = worker(storage, "paused-worker", 4, (n) => void ran.push(n), () => idles++);
  // Idle twice: it claimed at least twice (after its start and after a recheck) and found nothing.
  await waitUntil(() => idles >= 1, "the worker to go idle");
  await sleep(1_200); // past a paused worker's recheck (1 s)
  assert.deepEqual(ran, []);
  assert.equal((await storage.stats()).pending, 5);
  const [queue] = (await db.admin().listQueues()).filter((q) => q.name === "paused");
  assert.equal(queue?.paused, true);

  assert.deepEqual(await storage.resume(), { paused: false, limits: {} });
  await storage.waitFor(ids, { timeoutMs: 10_000 });
  assert.deepEqual(ran.sort(), [1, 2, 3, 4, 5]);
  assert.equal(await storage.isPaused(), false);
});

backendTest(
  "pause mid-drain: the running tasks finish, nothing starts after, what was claimed ahead goes back",
  async (db) => {
    const storage = db.storage<number>(new Config("mid-drain").withPollInterval(20));
    const admin = db.admin();
    const ids = await storage.pushAll(Array.from({ length: 3_000 }, (_, n) => new Task(n)));
    const starts: number[] = [];
    let pausedAt = 0;
    await using _worker = worker(storage, "drainer", 4, async (n) => {
      starts.push(Date.now());
      if (n === 200) {
        await admin.pauseQueue("mid-drain");
        pausedAt = Date.now();
      }
    });
    await waitUntil(() => pausedAt > 0, "the pause");
    await sleep(1_200);
    const counts = await storage.stats();
    assert.equal(counts.running + counts.queued, 0, `nothing held: ${JSON.stringify(counts)}`);
    assert.ok(counts.pending > 0, "tasks are left waiting");
    assert.equal(counts.pending + counts.done, 3_000);
    assert.equal(starts.length, counts.done, "every start finished");
    const late = starts.filter((at) => at > pausedAt + 1_000);
    assert.deepEqual(late, [], "no task started more than a second after the pause");
    await storage.resume();
    await storage.waitFor(ids, { timeoutMs: 60_000 });
    assert.equal((await storage.stats()).done, 3_000);
  },
);

backendTest("concurrency: at most N running at once across workers of one queue", async (db) => {
  const storage = db.storage<number>(new Config("capped").withPollInterval(20));
  await storage.setLimits({ concurrency: 3 });
  const ids = await storage.pushAll(Array.from({ length: 40 }, (_, n) => new Task(n)));
  let running = 0;
  let most = 0;
  const handler = async () => {
    most = Math.max(most, ++running);
    await sleep(15);
    running--;
  };
  await using _a = worker(storage, "capped-a", 8, handler);
  await using _b = worker(storage, "capped-b", 8, handler);
  await storage.waitFor(ids, { timeoutMs: 30_000 });
  assert.equal(most, 3, "the limit is reached and never passed");
  assert.deepEqual(await storage.getLimits(), { concurrency: 3 });
});

backendTest(
  "groupConcurrency 1: one task at a time per group; a busy group does not hold the others up",
  async (db) => {
    const storage = db.storage<{ group: string; n: number }>(
      new Config("grouped").withPollInterval(20),
    );
    await storage.setLimits({ groupConcurrency: 1 });
    // Group a's ten tasks come first in claim order; b and c's after them; then ungrouped ones.
    const tasks = [
      ...Array.from({ length: 10 }, (_, n) => Task.builder({ group: "a", n }).group("a").build()),
      ...Array.from({ length: 3 }, (_, n) => Task.builder({ group: "b", n }).group("b").build()),
      ...Array.from({ length: 3 }, (_, n) => new Task({ group: "c", n }, { group: "c" })),
      ...Array.from({ length: 4 }, (_, n) => new Task({ group: "", n })),
    ];
    const ids = await storage.pushAll(tasks);
    assert.equal((await storage.fetchById(ids[0]!))?.group, "a");
    assert.equal((await storage.fetchById(ids[16]!))?.group, undefined);
    const spans: Span[] = [];
    await using _worker = worker(storage, "grouped-worker", 6, async ({ group }) => {
      const begin = Date.now();
      await sleep(20);
      spans.push({ key: group, start: begin, end: Date.now() });
    });
    await storage.waitFor(ids, { timeoutMs: 30_000 });
    for (const group of ["a", "b", "c"]) {
      assert.equal(maxOverlap(spans.filter((s) => s.key === group)), 1, `group ${group}`);
    }
    assert.ok(maxOverlap(spans.filter((s) => s.key === "")) > 1, "ungrouped tasks run together");
    const lastOfA = Math.max(...spans.filter((s) => s.key === "a").map((s) => s.start));
    for (const group of ["b", "c"]) {
      const doneAt = Math.max(...spans.filter((s) => s.key === group).map((s) => s.end));
      assert.ok(doneAt <= lastOfA, `group ${group} finished before group a's last task started`);
    }
  },
);

backendTest("rate: at most `limit` starts in any window of `perMs`", async (db) => {
  const storage = db.storage<number>(new Config("rated").withPollInterval(20));
  await storage.setLimits({ rate: { limit: 4, perMs: 400 } });
  const ids = await storage.pushAll(Array.from({ length: 14 }, (_, n) => new Task(n)));
  await using _worker = worker(storage, "rated-worker", 8, () => {});
  const tasks = await storage.waitFor(ids, { timeoutMs: 30_000 });
  const claims = tasks.map((task) => task.lockAt!);
  assert.equal(maxInAnyWindow(claims, 400), 4, "the limit is reached and never passed");
  assert.deepEqual(await storage.getLimits(), { rate: { limit: 4, perMs: 400 } });
});

backendTest(
  "rate: a claim whose time was read before claims counted ahead of it is stamped after them, so no window of claim times holds more than the limit",
  async (db) => {
    const storage = db.storage<number>("stamped");
    await storage.setLimits({ rate: { limit: 5, perMs: 1_000 } });
    await storage.pushAll(Array.from({ length: 20 }, (_, n) => new Task(n)));
    // Claims as workers make them, each at the time its process read: a process that read its
    // time and then waited for the write lock (or the settings row) commits after a later one.
    const claim = async (now: number, direct: number) =>
      (await storage.backend.workerFlush({
        queue: "stamped",
        worker: "w",
        now,
        acks: [],
        start: [],
        claim: { direct, ahead: 0, textArgs: true },
      })).running.length;
    const base = Math.ceil((Date.now() + 60_000) / 1_000) * 1_000; // every task is due by then
    assert.equal(await claim(base, 5), 5, "the first window's 5");
    assert.equal(await claim(base + 1_010, 2), 2, "a second later: the first 5 no longer count");
    // Read 20 ms earlier than the claim before it, committed after it: 3 more may start, stamped
    // after the 2, not among the first 5.
    assert.equal(await claim(base + 990, 5), 3);
    const stamps = (await storage.listTasks({ status: "running" })).map((task) => task.lockAt!);
    assert.equal(stamps.length, 10);
    assert.equal(maxInAnyWindow(stamps, 1_000), 5, stamps.map((at) => at - base).join());
  },
);

backendTest("limits set while a worker runs apply to it; clearing them lifts them", async (db) => {
  const storage = db.storage<number>(new Config("changing").withPollInterval(20));
  const first = await storage.pushAll(Array.from({ length: 2_000 }, (_, n) => new Task(n)));
  let running = 0;
  let most = 0;
  let limited = false;
  await using _worker = worker(storage, "changing-worker", 8, async (n) => {
    running++;
    if (limited) most = Math.max(most, running);
    if (n === 100) {
      await storage.setLimits({ concurrency: 2 });
      // Whatever started before the worker's next flush is still running; from then on, 2.
      await sleep(50);
      limited = true;
    }
    await sleep(1);
    running--;
  });
  await storage.waitFor(first, { timeoutMs: 60_000 });
  assert.ok(most <= 2, `at most 2 ran at once once limited: ${most}`);
  await storage.clearLimits();
  assert.deepEqual(await storage.getLimits(), {});
  const queues = await db.admin().listQueues();
  assert.deepEqual(queues.find((q) => q.name === "changing")?.limits, {});
});

backendTest("limits: listQueues shows them; null removes one, absent ones stay", async (db) => {
  const admin = db.admin();
  await admin.setQueueLimits("shown", {
    rate: { limit: 100, perMs: 1_000 },
    concurrency: 5,
    groupConcurrency: 1,
  });
  let [queue] = (await admin.listQueues()).filter((q) => q.name === "shown");
  assert.deepEqual(queue?.limits, {
    rate: { limit: 100, perMs: 1_000 },
    concurrency: 5,
    groupConcurrency: 1,
  });
  assert.equal(queue?.paused, false);
  assert.deepEqual(await admin.setQueueLimits("shown", { concurrency: null }), {
    paused: false,
    limits: { rate: { limit: 100, perMs: 1_000 }, groupConcurrency: 1 },
  });
  await admin.pauseQueue("shown");
  await admin.clearQueueLimits("shown");
  [queue] = (await admin.listQueues()).filter((q) => q.name === "shown");
  assert.deepEqual({ paused: queue?.paused, limits: queue?.limits }, { paused: true, limits: {} });
  await admin.resumeQueue("shown");
  assert.deepEqual(await admin.queueFlow("shown"), { paused: false, limits: {} });
});

backendTest(
  "limits: bad values are refused with the field named, and nothing is written",
  async (db) => {
    const storage = db.storage<number>("strict");
    await storage.setLimits({ concurrency: 2 });
    const bad: [unknown, RegExp][] = [
      [
        { concurrency: 0 },
        /'concurrency' must be a whole number of tasks from 1 .*current value is 0/,
      ],
      [{ concurrency: -3 }, /'concurrency' must be .*current value is -3/],
      [{ concurrency: 1.5 }, /'concurrency' must be .*current value is 1.5/],
      [{ concurrency: "5" }, /'concurrency' must be .*current value is 5/],
      [{ groupConcurrency: 0 }, /'groupConcurrency' must be/],
      [{ rate: { limit: 0, perMs: 1_000 } }, /'rate.limit' must be/],
      [{ rate: { limit: 10 } }, /'rate.perMs' must be a whole number of milliseconds/],
      [{ rate: { limit: 10, perMs: Infinity } }, /'rate.perMs' must be/],
      [{ rate: { limit: 10, per: 1_000 } }, /'rate.per' is not a field of a rate/],
      [{ rate: 10 }, /'rate' must be \{ limit, perMs \} or null/],
      [{ concurency: 5 }, /'concurency' is not a limit/],
      [null, /the limits must be an object/],
      // A good field beside a bad one: nothing of it is written.
      [{ concurrency: 7, groupConcurrency: -1 }, /'groupConcurrency' must be/],
    ];
    for (const [limits, message] of bad) {
      await assert.rejects(
        // deno-lint-ignore no-explicit-any
        () => storage.setLimits(limits as any),
        (error: Error) => {
          assert.match(error.message, /^Cannot set the limits of queue 'strict'/);
          assert.match(error.message, message);
          return true;
        },
      );
    }
    assert.deepEqual(await storage.getLimits(), { concurrency: 2 });
    await assert.rejects(
      () => storage.push(1, { group: "" }),
      /'group' must be a non-empty string/,
    );
    await assert.rejects(
      // deno-lint-ignore no-explicit-any
      () => storage.push(1, { group: 42 as any }),
      /'group' must be a non-empty string: current value is 42/,
    );
    await assert.rejects(() => db.admin().pauseQueue(""), /'queue' must be a non-empty string/);
    assert.equal((await storage.stats()).total, 0);
  },
);
