/**
 * Conformance: progress and logs (`ctx.progress`, `ctx.log`). A worker in another process
 * reports them while its task runs, and this process reads them (`fetchById`, `logs`); bad
 * values throw and store nothing; each attempt's lines are bounded; a stale attempt writes
 * nothing (fenced like acks); lines go with their task (delete, vacuum, retention).
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  Config,
  MAX_LOG_BYTES,
  MAX_LOG_LINE_BYTES,
  MAX_LOG_LINES,
  type Storage,
  Task,
  type TaskContext,
  WorkerBuilder,
} from "../../mod.ts";
import { retentionPass } from "../../lib/worker/retention_sweeper.ts";
import { spawnChild, stopChild } from "./_child.ts";
import { backendTest, FakeClock, gate, start, waitUntil } from "./_suite.ts";

/** Runs `handler` over `storage` until the tasks `ids` have finished. */
async function runAll<T>(
  storage: Storage<T>,
  ids: readonly string[],
  handler: (args: T, ctx: TaskContext) => unknown,
): Promise<void> {
  const worker = new WorkerBuilder(`w-${crypto.randomUUID()}`).backend(storage)
    .handleSignals(false).retry({ backoff: { initialMs: 0, factor: 1, jitter: 0 } })
    .build(handler);
  await using _running = start(worker);
  await storage.waitFor(ids, { timeoutMs: 20_000 });
}

backendTest(
  "cross-process: a worker process's progress and log lines are read from this process while the task runs",
  async (db) => {
    const dir = await Deno.makeTempDir({ prefix: "apalis_report_" });
    const release = `${dir}/release`;
    const child = spawnChild(db.location, "reporter", ["--queue", "reports", "--report", release]);
    try {
      await child.ready;
      const storage = db.storage<{ n: number }>("reports");
      const id = await storage.push({ n: 7 });
      // The handler waits for the release file: nothing else flushes; the report timer does.
      await waitUntil(
        async () => (await storage.fetchById(id))?.progress !== undefined,
        "progress",
      );
      const running = await storage.fetchById(id);
      assert.equal(running?.status, "running");
      assert.deepEqual(running?.progress?.value, { step: "half", n: 7 });
      assert.equal(running?.progress?.attempt, 1);
      await waitUntil(async () => (await storage.logs(id)).length === 1, "the first line");
      const [first] = await storage.logs(id);
      assert.equal(first?.line, "started n=7");
      assert.equal(first?.attempt, 1);
      assert.equal((await storage.fetchById(id))?.status, "running", "still running");

      await Deno.writeTextFile(release, "");
      const [done] = await storage.waitFor(id, { timeoutMs: 20_000 });
      assert.equal(done?.status, "done");
      assert.equal(done?.progress?.value, 100, "the last progress lands with the outcome");
      const lines = await storage.logs(id);
      assert.deepEqual(lines.map((line) => line.line), ["started n=7", "finishing"]);
      assert.ok(lines[0]!.seq < lines[1]!.seq);
      assert.deepEqual(
        (await storage.logs(id, { after: lines[0]!.seq })).map((line) => line.line),
        ["finishing"],
      );
      await stopChild(child);
    } finally {
      await child[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

backendTest(
  "ctx.progress and ctx.log: bad values throw a TypeError and store nothing",
  async (db) => {
    const storage = db.storage<number>("validation");
    const id = await storage.push(1);
    const problems: string[] = [];
    await runAll(storage, [id], (_n, ctx) => {
      ctx.progress(10);
      const bad: unknown[] = [
        150,
        -1,
        Number.NaN,
        "half",
        [1, 2],
        null,
        new Date(0),
        { big: "x".repeat(5000) },
        { n: 1n },
      ];
      for (const value of bad) {
        try {
          ctx.progress(value as number);
          problems.push(`accepted ${String(value)}`);
        } catch (error) {
          assert.ok(error instanceof TypeError, String(error));
          problems.push(error.message);
        }
      }
      try {
        ctx.log(42 as unknown as string);
      } catch (error) {
        assert.ok(error instanceof TypeError);
        problems.push(error.message);
      }
    });
    assert.deepEqual(problems, [
      "ctx.progress(150): a number must be finite and from 0 to 100",
      "ctx.progress(-1): a number must be finite and from 0 to 100",
      "ctx.progress(NaN): a number must be finite and from 0 to 100",
      "ctx.progress() takes a number from 0 to 100 or a plain JSON object, not string",
      "ctx.progress() takes a number from 0 to 100 or a plain JSON object, not an array",
      "ctx.progress() takes a number from 0 to 100 or a plain JSON object, not null",
      "ctx.progress() takes a number from 0 to 100 or a plain JSON object, not object",
      "ctx.progress(): the object is 5010 bytes as JSON; at most 4096 are kept",
      "ctx.progress(): the object cannot be written as JSON: TypeError: Do not know how to serialize a BigInt",
      "ctx.log() takes a string, not number",
    ]);
    const task = await storage.fetchById(id);
    assert.equal(task?.progress?.value, 10, "the last valid value is kept");
    assert.deepEqual(await storage.logs(id), []);
    await assert.rejects(() => storage.logs(id, { attempt: 0 }), RangeError);
    await assert.rejects(() => storage.logs(id, { limit: 0 }), RangeError);
  },
);

backendTest(
  "ctx.log: an attempt keeps at most 1,000 lines and 64 KiB, lines cut at 4 KiB, with marker lines",
  async (db) => {
    const storage = db.storage<string>("bounds");
    const many = await storage.push("many");
    const wide = await storage.push("wide");
    const long = await storage.push("long");
    await runAll(storage, [many, wide, long], (kind, ctx) => {
      if (kind === "many") { for (let i = 1; i <= 1200; i++) ctx.log(`line ${i}`); }
      if (kind === "wide") { for (let i = 1; i <= 100; i++) ctx.log("é".repeat(500)); // 1,000 bytes
       }
      if (kind === "long") ctx.log("ü".repeat(3000)); // 6,000 bytes
      for (let i = 0; i < 1000; i++) ctx.progress(i % 101); // a tight loop: the last one is kept
    });
    const manyLines = (await storage.logs(many, { limit: 2000 })).map((line) => line.line);
    assert.equal(manyLines.length, MAX_LOG_LINES + 2);
    assert.equal(manyLines[MAX_LOG_LINES - 1], `line ${MAX_LOG_LINES}`);
    assert.match(manyLines[MAX_LOG_LINES]!, /^\[apalis\] log limit reached \(1000 lines or 64 KiB/);
    assert.equal(manyLines[MAX_LOG_LINES + 1], "[apalis] 200 lines dropped");

    const wideLines = (await storage.logs(wide)).map((line) => line.line);
    const kept = Math.floor(MAX_LOG_BYTES / 1000);
    assert.equal(wideLines.length, kept + 2);
    assert.equal(wideLines[kept + 1], `[apalis] ${100 - kept} lines dropped`);

    const [longLine] = await storage.logs(long);
    const bytes = new TextEncoder().encode(longLine!.line).length;
    assert.ok(bytes <= MAX_LOG_LINE_BYTES && bytes > MAX_LOG_LINE_BYTES - 8, `${bytes} bytes`);
    assert.ok(longLine!.line.endsWith("ü…"));
    assert.equal((await storage.fetchById(long))?.progress?.value, 999 % 101);
    const last = await storage.logs(many, { last: true, limit: 2 });
    assert.deepEqual(last.map((line) => line.line), manyLines.slice(-2));
  },
);

backendTest(
  "progress stays after a failed attempt and names its attempt; logs are per attempt",
  async (db) => {
    const storage = db.storage<number>("attempts");
    const id = await storage.push(1);
    const seen: (number | undefined)[] = [];
    await runAll(storage, [id], async (_n, ctx) => {
      if (ctx.attempt === 1) {
        ctx.log("first try");
        ctx.progress(30);
        throw new Error("planned");
      }
      // The previous attempt's progress is still there when the next one starts.
      const before = await storage.fetchById(id);
      seen.push(before?.progress?.attempt, before?.progress?.value as number);
      ctx.log("second try");
      ctx.progress({ rows: 5 });
    });
    assert.deepEqual(seen, [1, 30]);
    const task = await storage.fetchById(id);
    assert.equal(task?.status, "done");
    assert.deepEqual(task?.progress?.value, { rows: 5 });
    assert.equal(task?.progress?.attempt, 2);
    assert.deepEqual((await storage.logs(id, { attempt: 1 })).map((l) => l.line), ["first try"]);
    assert.deepEqual((await storage.logs(id, { attempt: 2 })).map((l) => l.line), ["second try"]);
    assert.deepEqual((await storage.logs(id)).map((l) => [l.attempt, l.line]), [
      [1, "first try"],
      [2, "second try"],
    ]);
  },
);

backendTest(
  "a stale attempt's progress and lines are not written (fenced like acks)",
  async (db) => {
    const storage = db.storage<number>("fenced");
    const { backend } = storage;
    const id = await storage.push(1);
    const other = await storage.push(2);
    const flush = (worker: string, attempt: number, value: string, taskId = id) =>
      backend.workerFlush({
        queue: "fenced",
        worker,
        acks: [],
        start: [],
        claim: { direct: 0, ahead: 0, textArgs: false },
        progress: [{ id: taskId, attempt, value }],
        logs: [{ id: taskId, attempt, lines: [{ at: 1, line: `${worker} ${attempt} ${value}` }] }],
      });
    const claimed = await backend.workerFlush({
      queue: "fenced",
      worker: "w",
      acks: [],
      start: [],
      claim: { direct: 2, ahead: 0, textArgs: false },
    });
    assert.equal(claimed.running.length, 2);
    await flush("w", 2, "20"); // not the current attempt
    await flush("v", 1, "30"); // not the worker holding it
    assert.equal((await storage.fetchById(id))?.progress, undefined);
    assert.deepEqual(await storage.logs(id), []);
    await flush("w", 1, "40");
    assert.equal((await storage.fetchById(id))?.progress?.value, 40);
    await storage.kill(id);
    await flush("w", 1, "50"); // the task was killed meanwhile
    assert.equal((await storage.fetchById(id))?.progress?.value, 40);
    assert.deepEqual((await storage.logs(id)).map((line) => line.line), ["w 1 40"]);
    await flush("w", 1, "60", other);
    assert.equal((await storage.fetchById(other))?.progress?.value, 60);
  },
);

backendTest("log lines go with their task: delete, vacuum and retention", async (db) => {
  const clock = new FakeClock(Date.now());
  const config = new Config("gone").withPollInterval(5)
    .setRetention({ done: "forever", killed: "forever" });
  const storage = db.storage<number>(config, { clock });
  const ids = await storage.pushAll([1, 2, 3, 4].map((n) => new Task(n)));
  await runAll(storage, ids, (n, ctx) => ctx.log(`task ${n}`));
  const count = async () => (await Promise.all(ids.map((id) => storage.logs(id)))).flat().length;
  assert.equal(await count(), 4);

  assert.ok(await storage.delete(ids[0]!));
  assert.deepEqual(await storage.logs(ids[0]!), []);
  assert.equal(await count(), 3);

  clock.advance(10_000);
  const keep = await storage.push(5);
  await runAll(storage, [keep], (n, ctx) => ctx.log(`task ${n}`));
  assert.equal(await storage.vacuum({ olderThanMs: 5_000 }), 3);
  assert.equal(await count(), 0);
  assert.equal((await storage.logs(keep)).length, 1, "the newer task keeps its line");

  clock.advance(10_000);
  const expiring = db.storage<number>(new Config("gone").setRetention({ done: 1_000 }), { clock });
  await retentionPass(expiring as Storage<unknown>, "sweeper");
  assert.equal(await storage.fetchById(keep), undefined, "retention deleted the task");
  assert.deepEqual(await storage.logs(keep), []);
});

backendTest("a task without progress or lines reads as before", async (db) => {
  const storage = db.storage<number>("plain");
  const id = await storage.push(1);
  const ready = gate();
  await runAll(storage, [id], () => ready.open());
  const task = await storage.fetchById(id);
  assert.equal(task?.status, "done");
  assert.equal("progress" in task!, false);
  assert.deepEqual(await storage.logs(id), []);
});
