/**
 * Conformance: cron schedules. Upserts by name, refusals that write nothing, the catch-up modes
 * (with a fake clock given to the storage: it is the time on both backends), time zones and
 * daylight saving time through croner, pausing, unscheduling, and a worker that enqueues and
 * runs ticks with the tick in `ctx.meta.cron`.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type CronMeta,
  InvalidScheduleError,
  ScheduleNameTakenError,
  WorkerBuilder,
} from "../../mod.ts";
import { MAX_CATCH_UP } from "../../lib/storage/cron.ts";
import { backendTest, FakeClock, start, waitUntil } from "./_suite.ts";

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 0, 1); // FakeClock's start: a whole minute

backendTest("schedule() creates a schedule; listSchedules() shows its ticks", async (db) => {
  const clock = new FakeClock(T0 + 10_000);
  const reports = db.storage<{ kind: string }>("reports", { clock });
  await reports.schedule("every-5", "*/5 * * * *", { kind: "r" }, {
    priority: 3,
    maxAttempts: 2,
    meta: { team: "ops" },
  });
  const [info, ...rest] = await reports.listSchedules();
  assert.deepEqual(rest, []);
  assert.deepEqual(info, {
    name: "every-5",
    queue: "reports",
    cron: "*/5 * * * *",
    timezone: "UTC",
    args: { kind: "r" },
    catchUp: "latest",
    priority: 3,
    maxAttempts: 2,
    meta: { team: "ops" },
    paused: false,
    nextTick: T0 + 5 * MINUTE,
    upcoming: [T0 + 5 * MINUTE, T0 + 10 * MINUTE, T0 + 15 * MINUTE],
    lastTick: null,
    lastTaskId: null,
    createdAt: T0 + 10_000,
    updatedAt: T0 + 10_000,
  });
  // The admin lists every queue's schedules; a storage its own queue's.
  await db.storage("other", { clock }).schedule("hourly", "0 * * * *", null);
  const all = await db.admin({ clock }).listSchedules({ upcoming: 1 });
  assert.deepEqual(all.map((s) => [s.name, s.queue, s.upcoming.length]), [
    ["every-5", "reports", 1],
    ["hourly", "other", 1],
  ]);
  assert.deepEqual((await reports.listSchedules()).map((s) => s.name), ["every-5"]);
});

backendTest(
  "schedule() again upserts: same expression keeps the next tick, a new one recomputes it from now",
  async (db) => {
    const clock = new FakeClock(T0);
    const storage = db.storage<number>("upsert", { clock });
    await storage.schedule("s", "*/10 * * * *", 1);
    clock.advance(25 * MINUTE); // the stored next tick (T0 + 10 min) is now in the past
    await storage.schedule("s", "*/10 * * * *", 2, { priority: 7 });
    let [info] = await storage.listSchedules();
    assert.equal(info!.nextTick, T0 + 10 * MINUTE, "kept, so that a catch-up still happens");
    assert.equal(info!.args, 2);
    assert.equal(info!.priority, 7);
    assert.equal(info!.updatedAt, T0 + 25 * MINUTE);
    await storage.schedule("s", "0 * * * *", 3);
    [info] = await storage.listSchedules();
    assert.equal(info!.nextTick, T0 + 60 * MINUTE, "the new expression's first tick after now");
    assert.equal(info!.cron, "0 * * * *");
    // The zone is part of the timing too.
    await storage.schedule("s", "0 * * * *", 3, { timezone: "Asia/Kolkata" }); // UTC+05:30
    [info] = await storage.listSchedules();
    assert.equal(info!.nextTick, T0 + 30 * MINUTE);
    assert.equal(info!.timezone, "Asia/Kolkata");
    assert.deepEqual(await storage.enqueueDueSchedules(), []);
  },
);

backendTest("schedule() refuses bad input with a clear error and writes nothing", async (db) => {
  const clock = new FakeClock(T0);
  const storage = db.storage<number>("bad", { clock });
  await storage.schedule("kept", "0 8 * * *", 1);
  const before = await storage.listSchedules();
  const refusals: [string, string, Record<string, unknown>, string, RegExp][] = [
    ["kept", "61 * * * *", {}, "cron", /"61 \* \* \* \*" is invalid: .*minute/],
    ["new", "every day", {}, "cron", /"every day" is invalid/],
    ["new", "2030-01-01T00:00:00", {}, "cron", /is a date .*not a repeating cron expression/],
    ["new", "0 0 0 1 1 * 2020", {}, "cron", /has no tick after now/],
    ["kept", "0 9 * * *", { timezone: "Mars/Olympus" }, "timezone", /"Mars\/Olympus" is not/],
    ["new", "* * * * *", { catchUp: "some" }, "catchUp", /none, latest, all: .*some/],
    ["new", "* * * * *", { priority: 1.5 }, "priority", /'priority' must be an integer/],
    ["new", "* * * * *", { maxAttempts: 0 }, "maxAttempts", /'maxAttempts' must be an integer/],
    ["new", "* * * * *", { meta: { cron: 1 } }, "meta", /must not have the key 'cron'/],
    ["new", "* * * * *", { paused: "yes" }, "paused", /'paused' must be a boolean/],
    ["", "* * * * *", {}, "name", /'name' must be a non-empty string/],
  ];
  for (const [name, cron, options, field, message] of refusals) {
    await assert.rejects(
      () => storage.schedule(name, cron, 2, options),
      (error: unknown) => {
        assert.ok(error instanceof InvalidScheduleError, String(error));
        assert.equal(error.field, field);
        assert.match(error.message, /^Cannot schedule '.*' on queue 'bad': /);
        assert.match(error.message, message);
        return true;
      },
    );
  }
  assert.deepEqual(await storage.listSchedules(), before, "nothing was written");
  // Names are unique in the database: another queue cannot take one.
  await assert.rejects(
    () => db.storage<number>("elsewhere", { clock }).schedule("kept", "* * * * *", 9),
    (error: unknown) =>
      error instanceof ScheduleNameTakenError && error.owner === "bad" &&
      /queue 'bad' has a schedule of that name/.test(error.message),
  );
  assert.deepEqual(await db.admin({ clock }).listSchedules(), before);
});

backendTest(
  'catchUp "latest" (the default) enqueues only the last missed tick, with the tick in its meta',
  async (db) => {
    const clock = new FakeClock(T0);
    const storage = db.storage<string>("latest", { clock });
    await storage.schedule("minutely", "* * * * *", "go", { meta: { source: "test" } });
    clock.advance(5 * MINUTE + 30_000); // ticks at +1..+5 min were missed
    const last = T0 + 5 * MINUTE;
    assert.deepEqual(await storage.enqueueDueSchedules(), [`cron:minutely:${last}`]);
    assert.deepEqual(await storage.enqueueDueSchedules(), [], "nothing more until the next tick");
    const task = await storage.fetchById(`cron:minutely:${last}`);
    assert.equal(task?.args, "go");
    assert.equal(task?.runAt, last, "due at its tick");
    assert.deepEqual(task?.meta, { source: "test", cron: { schedule: "minutely", tick: last } });
    const [info] = await storage.listSchedules();
    assert.equal(info!.nextTick, T0 + 6 * MINUTE);
    assert.equal(info!.lastTick, last);
    assert.equal(info!.lastTaskId, `cron:minutely:${last}`);
    assert.equal((await storage.stats("latest")).total, 1);
  },
);

backendTest('catchUp "none" skips missed ticks and runs the ones found on time', async (db) => {
  const clock = new FakeClock(T0);
  const storage = db.storage<string>("none", { clock });
  await storage.schedule("minutely", "* * * * *", "go", { catchUp: "none" });
  clock.advance(5 * MINUTE + 30_000);
  assert.deepEqual(await storage.enqueueDueSchedules(), [], "missed ticks are skipped");
  let [info] = await storage.listSchedules();
  assert.equal(info!.nextTick, T0 + 6 * MINUTE, "on to the next tick after now");
  assert.equal(info!.lastTick, null);
  clock.set(T0 + 6 * MINUTE + 200); // a worker on time
  assert.deepEqual(await storage.enqueueDueSchedules(), [`cron:minutely:${T0 + 6 * MINUTE}`]);
  // Found due more than a minute late: missed, even as the only due tick of an hourly schedule.
  await storage.schedule("hourly", "0 * * * *", "h", { catchUp: "none" });
  clock.set(T0 + 60 * MINUTE + 61_000);
  const ids = await storage.enqueueDueSchedules();
  assert.ok(!ids.includes(`cron:hourly:${T0 + 60 * MINUTE}`), `none late: ${ids}`);
  [info] = await storage.listSchedules({ queue: "none" });
  assert.equal(info!.name, "hourly");
  assert.equal(info!.nextTick, T0 + 120 * MINUTE);
});

backendTest(
  `catchUp "all" enqueues every missed tick once, at most the ${MAX_CATCH_UP} most recent`,
  async (db) => {
    const clock = new FakeClock(T0);
    const storage = db.storage<string>("all", { clock });
    await storage.schedule("minutely", "* * * * *", "go", { catchUp: "all" });
    clock.advance(5 * MINUTE + 30_000);
    const expected = [1, 2, 3, 4, 5].map((m) => `cron:minutely:${T0 + m * MINUTE}`);
    assert.deepEqual(await storage.enqueueDueSchedules(), expected);
    assert.deepEqual(await storage.enqueueDueSchedules(), []);
    assert.equal((await storage.stats("all")).pending, 5);

    await storage.schedule("secondly", "* * * * * *", "s", { catchUp: "all" });
    const from = clock.now();
    clock.advance(2_500_000); // 2,500 seconds: 2,500 ticks missed
    const ids = (await storage.enqueueDueSchedules()).filter((id) => id.includes("secondly"));
    assert.equal(ids.length, MAX_CATCH_UP);
    const ticks = ids.map((id) => Number(id.split(":")[2]));
    const newest = Math.floor(clock.now() / 1000) * 1000;
    assert.deepEqual(
      ticks,
      Array.from({ length: MAX_CATCH_UP }, (_, i) => newest - (MAX_CATCH_UP - 1 - i) * 1000),
      "the most recent ticks, oldest first",
    );
    assert.ok(ticks[0]! > from + 1000);
    assert.equal(
      (await storage.stats("all")).pending,
      5 + 42 + MAX_CATCH_UP,
      "and 42 minutely (+6 to +47 min)",
    );
  },
);

backendTest(
  "Two connections enqueueing the same due ticks at once write each tick once",
  async (db) => {
    const clock = new FakeClock(T0);
    const first = db.storage<number>("race", { clock });
    const second = (await db.connect()).storage<number>("race", { clock });
    await first.schedule("secondly", "* * * * * *", 1, { catchUp: "all" });
    for (let round = 0; round < 20; round++) {
      clock.advance(7_000);
      const [a, b] = await Promise.all([first.enqueueDueSchedules(), second.enqueueDueSchedules()]);
      assert.equal(a.length + b.length, 7, `round ${round}: ${a.length} + ${b.length}`);
      assert.deepEqual(a.filter((id) => b.includes(id)), []);
    }
    assert.equal((await first.stats("race")).pending, 140);
  },
);

backendTest("Time zones and daylight saving time follow croner", async (db) => {
  // Paris springs forward on 2026-03-29 at 02:00 (to 03:00) and falls back on 2026-10-25 at
  // 03:00 (to 02:00).
  const clock = new FakeClock(Date.UTC(2026, 2, 27, 12));
  const storage = db.storage<number>("zones", { clock });
  await storage.schedule("night", "30 2 * * *", 1, { timezone: "Europe/Paris", catchUp: "all" });
  let [night] = await storage.listSchedules();
  assert.equal(night!.timezone, "Europe/Paris");
  assert.deepEqual(night!.upcoming, [
    Date.UTC(2026, 2, 28, 1, 30), // 02:30 CET
    Date.UTC(2026, 2, 29, 1, 0), // 02:30 does not exist: 03:00 CEST, after the gap
    Date.UTC(2026, 2, 30, 0, 30), // 02:30 CEST
  ]);
  clock.set(Date.UTC(2026, 2, 30, 12));
  assert.deepEqual(
    await storage.enqueueDueSchedules(),
    night!.upcoming.map((t) => `cron:night:${t}`),
  );
  await storage.unschedule("night");

  clock.set(Date.UTC(2026, 9, 24, 23, 40));
  await storage.schedule("half-past", "30 * * * *", 2, { timezone: "Europe/Paris" });
  [night] = await storage.listSchedules({ upcoming: 4 });
  assert.deepEqual(night!.upcoming, [
    Date.UTC(2026, 9, 25, 0, 30), // 02:30 CEST
    Date.UTC(2026, 9, 25, 1, 30), // 02:30 CET: the repeated hour runs again
    Date.UTC(2026, 9, 25, 2, 30),
    Date.UTC(2026, 9, 25, 3, 30),
  ]);
  // A seconds field: six fields, seconds first.
  await storage.schedule("seconds", "15,45 * * * * *", 3);
  const seconds = (await storage.listSchedules()).find((s) => s.name === "seconds")!;
  assert.deepEqual(seconds.upcoming, [
    Date.UTC(2026, 9, 24, 23, 40, 15),
    Date.UTC(2026, 9, 24, 23, 40, 45),
    Date.UTC(2026, 9, 24, 23, 41, 15),
  ]);
});

backendTest(
  "A paused schedule enqueues nothing; resuming it skips the paused ticks",
  async (db) => {
    const clock = new FakeClock(T0);
    const storage = db.storage<number>("paused", { clock });
    await storage.schedule("minutely", "* * * * *", 1, { paused: true, catchUp: "all" });
    let [info] = await storage.listSchedules();
    assert.equal(info!.paused, true);
    assert.equal(info!.nextTick, null);
    assert.deepEqual(info!.upcoming, []);
    clock.advance(10 * MINUTE);
    assert.deepEqual(await storage.enqueueDueSchedules(), []);
    await storage.schedule("minutely", "* * * * *", 1, { catchUp: "all" });
    [info] = await storage.listSchedules();
    assert.equal(info!.nextTick, T0 + 11 * MINUTE, "from the next tick after resuming");
    clock.advance(MINUTE);
    assert.deepEqual(await storage.enqueueDueSchedules(), [`cron:minutely:${T0 + 11 * MINUTE}`]);
  },
);

backendTest("unschedule() deletes the queue's schedule and leaves its tasks", async (db) => {
  const clock = new FakeClock(T0);
  const storage = db.storage<number>("gone", { clock });
  await storage.schedule("minutely", "* * * * *", 1);
  clock.advance(MINUTE);
  const [id] = await storage.enqueueDueSchedules();
  assert.equal(await db.storage("another", { clock }).unschedule("minutely"), false);
  assert.equal(await storage.unschedule("minutely"), true);
  assert.equal(await storage.unschedule("minutely"), false);
  assert.deepEqual(await db.admin().listSchedules(), []);
  assert.equal((await storage.fetchById(id!))?.status, "pending");
  clock.advance(10 * MINUTE);
  assert.deepEqual(await storage.enqueueDueSchedules(), []);
});

backendTest("A running worker enqueues due ticks and its handler reads the tick", async (db) => {
  const clock = new FakeClock(T0);
  const storage = db.storage<string>("worked", { clock });
  const seen: { args: string; cron: CronMeta; id: string }[] = [];
  const worker = new WorkerBuilder("cron-worker")
    .backend(storage)
    .handleSignals(false)
    .build((args, ctx) => {
      seen.push({ args, cron: ctx.meta.cron as CronMeta, id: ctx.taskId });
    });
  await using _running = start(worker);
  await storage.schedule("minutely", "* * * * *", "tick");
  clock.advance(MINUTE);
  await waitUntil(() => seen.length === 1, "the worker to run the first tick");
  clock.advance(MINUTE);
  await waitUntil(() => seen.length === 2, "the worker to run the second tick");
  assert.deepEqual(
    seen,
    [1, 2].map((m) => ({
      args: "tick",
      cron: { schedule: "minutely", tick: T0 + m * MINUTE },
      id: `cron:minutely:${T0 + m * MINUTE}`,
    })),
  );
});
