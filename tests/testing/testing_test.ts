/**
 * The `./testing` entry point: what a user's tests rely on. tempDatabase gives each test a file
 * of its own and removes it; assertEnqueued / refuteEnqueued match tasks and explain a miss;
 * drainQueue runs due tasks inline and counts every outcome, with a TestClock for what is
 * scheduled later; the same helpers work on a PostgreSQL storage.
 *
 * @module
 */
import assert from "node:assert/strict";
import { AssertionError } from "node:assert";
import { existsSync } from "node:fs";
import { AbortError, Workflow } from "../../mod.ts";
import { PostgresStorage } from "../../postgres.ts";
import {
  assertEnqueued,
  drainQueue,
  enqueuedTasks,
  refuteEnqueued,
  tempDatabase,
  TestClock,
} from "../../testing.ts";
import { pgTest, tempPostgres } from "../_postgres.ts";

interface Email {
  to: string;
  template: string;
  vars?: Record<string, unknown>;
}

Deno.test("tempDatabase() opens a set-up file of its own, and removes it on dispose", async () => {
  let path: string;
  {
    await using a = await tempDatabase();
    await using b = await tempDatabase();
    path = a.path;
    assert.notEqual(a.path, b.path);
    assert.ok(existsSync(a.path));
    await a.storage("email").push({ to: "a@b.c" });
    assert.equal((await b.storage("email").listTasks()).length, 0, "nothing shared");
  }
  assert.equal(existsSync(path), false, "removed");
});

Deno.test("assertEnqueued() matches args on the keys given, meta, priority, state and due time; counts exactly", async () => {
  const clock = new TestClock(Date.UTC(2026, 0, 1));
  await using db = await tempDatabase();
  const emails = db.storage<Email>("email", { clock });
  await emails.push({ to: "a@b.c", template: "welcome", vars: { name: "Ann", n: [1, 2] } });
  await emails.push({ to: "b@b.c", template: "welcome" }, { priority: 5, runAfter: 60_000 });
  await emails.push({ to: "c@b.c", template: "bye" }, { meta: { tenant: "t1" } });
  await db.storage("other").push({ to: "a@b.c", template: "welcome" });

  await assertEnqueued(emails, { args: { template: "welcome" }, count: 2 });
  await assertEnqueued(emails, { args: { vars: { n: [1, 2] } }, count: 1 });
  await assertEnqueued(emails, { args: (e: Email) => e.to.startsWith("c@"), count: 1 });
  await assertEnqueued(emails, { meta: { tenant: "t1" }, count: 1 });
  await assertEnqueued(emails, { priority: 5, count: 1 });
  await assertEnqueued(emails, { due: clock.now(), count: 2 });
  await assertEnqueued(emails, { due: { after: clock.now() }, count: 1 });
  const [found] = await assertEnqueued(emails, { args: { to: "b@b.c" } });
  assert.equal(found?.args.to, "b@b.c");
  await assertEnqueued(db.storage("other"), { count: 1 });
  await assertEnqueued(emails, { queue: "other", count: 1 });
  assert.equal(
    (await enqueuedTasks(emails, { args: { vars: { n: [1] } } })).length,
    0,
    "arrays whole",
  );

  await assert.rejects(
    assertEnqueued(emails, { args: { template: "welcome" }, count: 3 }),
    (error: Error) => {
      assert.ok(error instanceof AssertionError);
      assert.match(error.message, /Expected 3 tasks in queue 'email' with status 'pending'/);
      assert.match(error.message, /found 2\. Enqueued there \(3\):/);
      assert.match(
        error.message,
        /args \{ to: 'c@b\.c', template: 'bye' \} meta \{ tenant: 't1' \}/,
      );
      return true;
    },
  );
  await assert.rejects(assertEnqueued(emails, { status: "done" }), /Nothing is enqueued there/);
  await assert.rejects(assertEnqueued(emails, { count: -1 }), /'count' must be an integer >= 0/);

  await refuteEnqueued(emails, { args: { to: "z@b.c" } });
  await assert.rejects(
    refuteEnqueued(emails, { args: { to: "a@b.c" } }),
    /Expected no task in queue 'email' with status 'pending' matching .*found 1: .*a@b\.c/s,
  );
});

Deno.test("drainQueue() runs due tasks and those they push, counts every outcome, and leaves retries waiting", async () => {
  const clock = new TestClock();
  await using db = await tempDatabase();
  const jobs = db.storage<{ n: number }>("jobs", { clock });
  for (let n = 1; n <= 5; n++) await jobs.push({ n });
  await jobs.push({ n: 99 }, { runAfter: 60_000 }); // not due
  const ran: number[] = [];
  const result = await drainQueue(jobs, async ({ n }) => {
    ran.push(n);
    if (n === 3) throw new Error("three fails");
    if (n === 4) throw new AbortError("four is killed");
    if (n === 5) await jobs.push({ n: 50 }); // pushed by a handler: runs in the same drain
  });
  assert.deepEqual(ran.sort((a, b) => a - b), [1, 2, 3, 4, 5, 50]);
  assert.equal(result.ran, 6);
  assert.equal(result.done, 4);
  assert.equal(result.failed, 1);
  assert.equal(result.killed, 1);
  assert.deepEqual(result.errors.map((e) => (e as Error).message), [
    "three fails",
    "four is killed",
  ]);
  const counts = await jobs.stats();
  assert.equal(counts.done, 4);
  assert.equal(counts.failed, 1, "its retry waits for its backoff: the clock stands still");
  assert.equal(counts.pending, 1, "the scheduled task");
});

Deno.test("drainQueue({ withScheduled }) moves the TestClock to each next due task: delays and retries run", async () => {
  const clock = new TestClock(Date.UTC(2026, 0, 1));
  const start = clock.now();
  await using db = await tempDatabase();
  const jobs = db.storage<{ n: number }>("jobs", { clock });
  await jobs.push({ n: 1 }, { runAfter: 3_600_000, maxAttempts: 3 });
  let attempts = 0;
  const result = await drainQueue(jobs, () => {
    if (++attempts < 3) throw new Error(`attempt ${attempts}`);
  }, {
    withScheduled: true,
    worker: (w) => w.retry({ backoff: { initialMs: 1000, factor: 1, jitter: 0 } }),
  });
  assert.equal(result.done, 1);
  assert.equal(result.failed, 2);
  assert.equal(clock.now(), start + 3_600_000 + 2 * 1000, "an hour, then two backoffs");
  assert.equal((await jobs.stats()).done, 1);

  await using other = await tempDatabase();
  await assert.rejects(
    drainQueue(other.storage("x"), () => {}, { withScheduled: true }),
    /the storage's clock is not a TestClock/,
  );
});

Deno.test("drainQueue() runs a workflow's steps, and gives up with a clear error when a handler never settles", async () => {
  await using db = await tempDatabase();
  const math = db.storage<number>("math");
  const flow = new Workflow<number>("double-then-add").andThen((n) => n * 2).andThen((n) => n + 1);
  const runId = await math.pushStart(20);
  const result = await drainQueue(math, flow);
  assert.equal(result.done, 2);
  assert.equal((await math.workflowRun(runId))?.result, 41);

  const stuck = db.storage<number>("stuck");
  await stuck.push(1);
  await assert.rejects(
    drainQueue(stuck, () => new Promise(() => {}), { timeoutMs: 300 }),
    /Cannot drain queue 'stuck': tasks were still due or running after 300 ms/,
  );
});

Deno.test("drainQueue() enqueues the cron ticks due by the TestClock, and runs them", async () => {
  const clock = new TestClock(Date.UTC(2026, 0, 1, 7, 30));
  await using db = await tempDatabase();
  const digests = db.storage<{ kind: string }>("digests", { clock });
  await digests.schedule("daily-digest", "0 8 * * *", { kind: "digest" });
  assert.equal((await drainQueue(digests, () => {})).ran, 0, "8:00 has not come");
  clock.advance("30m");
  const seen: unknown[] = [];
  const result = await drainQueue(digests, (args, ctx) => void seen.push([args, ctx.meta.cron]));
  assert.equal(result.done, 1);
  assert.deepEqual(seen, [[{ kind: "digest" }, {
    schedule: "daily-digest",
    tick: Date.UTC(2026, 0, 1, 8),
  }]]);
});

Deno.test("TestClock moves by milliseconds or durations, and refuses what is not one", () => {
  const clock = new TestClock(new Date("2026-01-01T00:00:00Z"));
  clock.advance("1h");
  clock.advance(500);
  assert.equal(new Date(clock.now()).toISOString(), "2026-01-01T01:00:00.500Z");
  clock.set(0);
  assert.equal(clock.now(), 0);
  assert.throws(() => clock.advance("soon"), /Cannot advance the clock by "soon"/);
  assert.throws(() => clock.advance(-1), /milliseconds >= 0/);
  assert.throws(() => new TestClock(new Date("nope")), /'start' must be epoch milliseconds/);
});

pgTest("the testing helpers work on a PostgreSQL storage", async () => {
  await using db = await tempPostgres();
  const clock = new TestClock();
  const emails = new PostgresStorage<Email>(db.pg, "email", { clock });
  await emails.push({ to: "a@b.c", template: "welcome" });
  await emails.push({ to: "b@b.c", template: "welcome" }, { runAfter: 60_000 });
  await assertEnqueued(emails, { args: { template: "welcome" }, count: 2 });
  const first = await drainQueue(emails, () => {});
  assert.equal(first.done, 1);
  const second = await drainQueue(emails, () => {}, { withScheduled: true });
  assert.equal(second.done, 1);
  await refuteEnqueued(emails);
});
