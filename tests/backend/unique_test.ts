/**
 * Conformance: unique pushes. A push with `unique` inserts nothing and answers the earlier
 * task's id while that task blocks it: same queue and key (the caller's, or the encoded
 * arguments'), in one of the blocking states, within the period. `pushAll` applies it per task;
 * bad options are refused before anything is written.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  DuplicateTaskError,
  Task,
  UNIQUE_STATES_PERIOD,
  UNIQUE_STATES_UNFINISHED,
  WorkerBuilder,
} from "../../mod.ts";
import { backendTest, FakeClock, gate, start, waitUntil } from "./_suite.ts";

const HASH_KEY = /^args:sha256:[0-9a-f]{64}$/;

backendTest(
  "unique by key: a duplicate answers the earlier task's id and inserts nothing; keys are per queue",
  async (db) => {
    const storage = db.storage<{ n: number }>("digest");
    const other = db.storage<{ n: number }>("elsewhere");
    const unique = { key: "digest:42" };
    const first = await storage.pushDetailed({ n: 1 }, { unique });
    assert.equal(first.inserted, true);
    // Other arguments, same key: still a duplicate.
    assert.deepEqual(await storage.pushDetailed({ n: 2 }, { unique }), {
      id: first.id,
      inserted: false,
    });
    assert.equal(await storage.push({ n: 3 }, { unique }), first.id);
    assert.equal(await storage.pushTask(Task.builder({ n: 4 }).unique(unique).build()), first.id);
    // Another key, another queue, or no `unique`: inserted.
    const otherKey = await storage.pushDetailed({ n: 1 }, { unique: { key: "digest:43" } });
    const otherQueue = await other.pushDetailed({ n: 1 }, { unique });
    const plain = await storage.push({ n: 1 });
    assert.equal(otherKey.inserted, true);
    assert.equal(otherQueue.inserted, true);
    assert.equal(new Set([first.id, otherKey.id, otherQueue.id, plain]).size, 4);
    assert.equal((await storage.stats("digest")).total, 3);
    assert.equal((await storage.stats("elsewhere")).total, 1);
    // A unique task in a group, among plain ones in one pushAll: each keeps its own columns.
    const [grouped, bare] = await storage.pushAll([
      new Task({ n: 5 }, { unique: { key: "grouped" }, group: "customer-7" }),
      new Task({ n: 6 }),
    ]);
    const [g, b] = [await storage.fetchById(grouped!), await storage.fetchById(bare!)];
    assert.deepEqual([g?.uniqueKey, g?.group, b?.uniqueKey, b?.group], [
      "grouped",
      "customer-7",
      undefined,
      undefined,
    ]);
    await storage.delete(grouped!);
    await storage.delete(bare!);

    const record = await storage.fetchById(first.id);
    assert.deepEqual([record?.args, record?.uniqueKey], [{ n: 1 }, "digest:42"]);
    assert.equal((await storage.fetchById(plain))?.uniqueKey, undefined);
    // An id of the caller's is kept on insert; a duplicate answers the holder's instead.
    const byId = await storage.pushDetailed({ n: 9 }, { id: "mine", unique: { key: "k" } });
    assert.deepEqual(byId, { id: "mine", inserted: true });
    assert.deepEqual(await storage.pushDetailed({ n: 9 }, { id: "mine-2", unique: { key: "k" } }), {
      id: "mine",
      inserted: false,
    });
    assert.equal(await storage.fetchById("mine-2"), undefined);
  },
);

backendTest(
  "unique without a key: by the encoded arguments (SHA-256), per queue",
  async (db) => {
    const storage = db.storage<unknown>("reports");
    const a = await storage.pushDetailed({ month: "2026-01", full: true }, { unique: {} });
    const again = await storage.pushDetailed({ month: "2026-01", full: true }, { unique: {} });
    const b = await storage.pushDetailed({ month: "2026-02", full: true }, { unique: {} });
    // JSON keeps key order: the same object written in another order is other bytes.
    const reordered = await storage.pushDetailed({ full: true, month: "2026-01" }, {
      unique: {},
    });
    assert.deepEqual(again, { id: a.id, inserted: false });
    assert.equal(b.inserted, true);
    assert.equal(reordered.inserted, true);
    const keyA = (await storage.fetchById(a.id))?.uniqueKey;
    assert.match(keyA ?? "", HASH_KEY);
    assert.notEqual((await storage.fetchById(b.id))?.uniqueKey, keyA);
    // Text payloads and bytes-level codecs hash what they store.
    assert.equal((await storage.pushDetailed("plain text", { unique: {} })).inserted, true);
    assert.equal((await storage.pushDetailed("plain text", { unique: {} })).inserted, false);
    assert.equal((await storage.pushDetailed("plain text!", { unique: {} })).inserted, true);
    assert.equal((await storage.stats("reports")).total, 5);
  },
);

backendTest(
  "unique with the default states: an earlier task blocks while pending, running or failed, not once done or killed",
  async (db) => {
    const clock = new FakeClock();
    const storage = db.storage<string>("refresh", { clock });
    const admin = db.admin({ clock });
    assert.deepEqual(UNIQUE_STATES_UNFINISHED, ["pending", "queued", "running", "failed"]);
    const unique = { key: "refresh" };
    const pending = await storage.push("a", { unique });
    assert.equal(await storage.push("b", { unique }), pending, "pending blocks");
    await admin.kill(pending, "dropped");
    const afterKill = await storage.pushDetailed("c", { unique });
    assert.equal(afterKill.inserted, true, "a killed task does not block");

    // Running (held by a worker) blocks; failed (waiting for its retry) blocks; done does not.
    const release = gate();
    let attempts = 0;
    const worker = new WorkerBuilder("refresher").backend(storage).handleSignals(false)
      .retry({ backoff: { initialMs: 3_600_000, factor: 1, maxMs: 3_600_000, jitter: 0 } })
      .build(async () => {
        attempts++;
        if (attempts === 1) throw new Error("first attempt fails");
        await release.promise;
      });
    await using _running = start(worker);
    await waitUntil(
      async () => (await storage.fetchById(afterKill.id))?.status === "failed",
      "the first attempt to fail",
    );
    assert.equal(await storage.push("d", { unique }), afterKill.id, "failed blocks");
    clock.advance(3_600_000); // the retry falls due
    await waitUntil(
      async () => (await storage.fetchById(afterKill.id))?.status === "running",
      "the retry to run",
    );
    assert.equal(await storage.push("e", { unique }), afterKill.id, "running blocks");
    release.open();
    await storage.waitFor(afterKill.id, { timeoutMs: 10_000 });
    const afterDone = await storage.pushDetailed("f", { unique });
    assert.equal(afterDone.inserted, true, "a done task does not block");
    await storage.waitFor(afterDone.id, { timeoutMs: 10_000 });
    assert.deepEqual(
      (await storage.listTasks({ queue: "refresh" })).map((t) => [t.args, t.status]),
      [["f", "done"], ["c", "done"], ["a", "killed"]],
    );
  },
);

backendTest(
  "unique with periodMs: blocks for the period since the earlier push, done or not, unless killed",
  async (db) => {
    const clock = new FakeClock();
    const storage = db.storage<string>("hourly", { clock });
    const admin = db.admin({ clock });
    assert.deepEqual(UNIQUE_STATES_PERIOD, ["pending", "queued", "running", "failed", "done"]);
    const unique = { key: "hourly", periodMs: 60_000 };
    const first = await storage.push("a", { unique });
    clock.advance(59_999);
    assert.equal(await storage.push("b", { unique }), first, "within the period");
    // Done within the period still blocks.
    const worker = new WorkerBuilder("hourly").backend(storage).handleSignals(false)
      .build(() => "ok");
    await worker.runUntil(storage.waitFor(first, { timeoutMs: 10_000 }));
    assert.equal((await storage.fetchById(first))?.status, "done");
    assert.equal(await storage.push("c", { unique }), first, "done, within the period");
    clock.advance(1);
    const second = await storage.pushDetailed("d", { unique });
    assert.equal(second.inserted, true, "the period has passed");
    // The period counts from the new holder's push.
    clock.advance(30_000);
    assert.equal(await storage.push("e", { unique }), second.id);
    // Killed within the period does not block.
    await admin.kill(second.id);
    const third = await storage.pushDetailed("f", { unique });
    assert.equal(third.inserted, true);
    // A later push may give a shorter period: it is the new push's period that counts.
    clock.advance(10_000);
    assert.equal(
      (await storage.pushDetailed("g", { unique: { key: "hourly", periodMs: 10_000 } })).inserted,
      true,
    );
    assert.equal((await storage.stats("hourly")).total, 4);
  },
);

backendTest(
  "unique with periodMs on the backend's own clock (no clock given): a real short period expires",
  async (db) => {
    // No clock: SQLite uses this host's, PostgreSQL the database server's.
    const storage = db.storage<string>("real-time");
    const unique = { key: "k", periodMs: 1_500 };
    const first = await storage.push("a", { unique });
    assert.equal(await storage.push("b", { unique }), first);
    await new Promise((resolve) => setTimeout(resolve, 1_600));
    const later = await storage.pushDetailed("c", { unique });
    assert.equal(later.inserted, true);
    assert.notEqual(later.id, first);
  },
);

backendTest(
  "unique with states: only an earlier task in those states blocks; with periodMs too, both must hold",
  async (db) => {
    const clock = new FakeClock();
    const storage = db.storage<string>("states", { clock });
    const admin = db.admin({ clock });
    const onlyKilled = { key: "k", states: ["killed" as const] };
    const pending = await storage.push("a", { unique: { key: "k" } });
    // The earlier task is pending, not killed: it does not block, and the new one holds the key.
    const second = await storage.pushDetailed("b", { unique: onlyKilled });
    assert.equal(second.inserted, true);
    assert.equal(await storage.push("c", { unique: { key: "k" } }), second.id, "it holds the key");
    await admin.kill(second.id);
    assert.equal(await storage.push("d", { unique: onlyKilled }), second.id, "killed blocks");
    // Duplicated states are fine.
    assert.equal(
      await storage.push("d", { unique: { key: "k", states: ["killed", "killed"] } }),
      second.id,
    );
    const both = { key: "k", states: ["killed" as const], periodMs: 5_000 };
    assert.equal(await storage.push("e", { unique: both }), second.id, "killed and in period");
    clock.advance(5_000);
    const third = await storage.pushDetailed("f", { unique: both });
    assert.equal(third.inserted, true, "killed but out of the period");
    assert.deepEqual(
      (await storage.listTasks({ queue: "states" })).map((t) => t.args).sort(),
      ["a", "b", "f"],
    );
    assert.equal((await storage.fetchById(pending))?.status, "pending");
  },
);

backendTest(
  "pushAll() applies unique per task: a duplicate's slot gets the earlier id, the rest are inserted",
  async (db) => {
    const storage = db.storage<string>("batch");
    const stored = await storage.push("stored", { unique: { key: "j" } });
    const tasks = [
      new Task("k1", { unique: { key: "k" } }),
      new Task("plain"),
      new Task("k2", { unique: { key: "k" } }), // a duplicate of the first, in the same call
      new Task("j", { unique: { key: "j" } }), // a duplicate of a stored task
      Task.builder("args").unique().build(),
      Task.builder("args").unique().build(),
    ];
    const results = await storage.pushAllDetailed(tasks);
    assert.deepEqual(results.map((r) => r.inserted), [true, true, false, false, true, false]);
    assert.equal(results[2]!.id, results[0]!.id);
    assert.equal(results[3]!.id, stored);
    assert.equal(results[5]!.id, results[4]!.id);
    const ids = await storage.pushAll(tasks);
    assert.deepEqual(ids, [results[0]!.id, ids[1], results[0]!.id, stored, results[4]!.id, ids[5]]);
    assert.equal(ids[5], results[4]!.id);
    assert.notEqual(ids[1], results[1]!.id, "the plain task is pushed again");
    assert.deepEqual(
      (await storage.listTasks({ queue: "batch" })).map((t) => t.args).sort(),
      ["args", "k1", "plain", "plain", "stored"],
    );

    // A duplicate id still fails the whole call, and the keys it would have claimed stay free.
    await assert.rejects(
      storage.pushAll([
        new Task("x", { unique: { key: "fresh" } }),
        new Task("y", { id: stored }),
      ]),
      (error: unknown) => error instanceof DuplicateTaskError && error.id === stored,
    );
    const fresh = await storage.pushDetailed("z", { unique: { key: "fresh" } });
    assert.equal(fresh.inserted, true, "the failed call claimed nothing");
    assert.equal((await storage.stats("batch")).total, 6);

    // pushStream: per task as well.
    const streamed = await storage.pushStream(["s", "s", "t"], { unique: {}, batchSize: 2 });
    assert.equal(streamed[1], streamed[0]);
    assert.notEqual(streamed[2], streamed[0]);
    assert.equal((await storage.stats("batch")).total, 8);
  },
);

backendTest(
  "a deleted or vacuumed task no longer blocks its key",
  async (db) => {
    const clock = new FakeClock();
    const storage = db.storage<string>("gone", { clock });
    const admin = db.admin({ clock });
    const long = { key: "k", periodMs: 365 * 86_400_000 };
    const first = await storage.push("a", { unique: long });
    assert.equal(await admin.delete(first), true);
    const second = await storage.pushDetailed("b", { unique: long });
    assert.equal(second.inserted, true);
    const worker = new WorkerBuilder("gone").backend(storage).handleSignals(false).build(() => {});
    await worker.runUntil(storage.waitFor(second.id, { timeoutMs: 10_000 }));
    clock.advance(1_000);
    assert.equal(await storage.push("c", { unique: long }), second.id, "done, within the period");
    assert.equal(await admin.vacuum({ olderThanMs: 0 }), 1);
    const third = await storage.pushDetailed("d", { unique: long });
    assert.equal(third.inserted, true, "the vacuumed task released its key");
  },
);

backendTest(
  "bad unique options are refused, naming the option, and write nothing",
  async (db) => {
    const storage = db.storage<string>("bad");
    const refused = async (unique: unknown, pattern: RegExp) => {
      await assert.rejects(
        // deno-lint-ignore no-explicit-any
        storage.push("x", { unique: unique as any }),
        (error: unknown) => error instanceof Error && pattern.test(error.message),
      );
    };
    await refused({ periodMs: -1 }, /'unique\.periodMs' must be a number of milliseconds > 0.*-1/);
    await refused({ periodMs: 0 }, /'unique\.periodMs' must be .* > 0/);
    await refused({ periodMs: Number.NaN }, /'unique\.periodMs'.*NaN/);
    await refused({ periodMs: Infinity }, /'unique\.periodMs'/);
    await refused({ states: ["pending", "paused"] }, /'unique\.states' must be made of .*"paused"/);
    await refused({ states: [] }, /'unique\.states' must be a non-empty array/);
    await refused({ states: "pending" }, /'unique\.states' must be a non-empty array/);
    await refused({ key: "" }, /'unique\.key' must be a non-empty string/);
    await refused({ key: 42 }, /'unique\.key' must be a non-empty string/);
    await refused({ key: "args:sha256:abc" }, /'unique\.key' .*reserved/);
    await refused({ period: 1000 }, /unknown option 'period'/);
    await refused(null, /'unique' must be an object/);
    await refused("k", /'unique' must be an object/);
    await assert.rejects(
      storage.pushAll([new Task("ok"), new Task("x", { unique: { periodMs: -5 } })]),
      /'unique\.periodMs'/,
    );
    await assert.rejects(
      storage.pushStart("run", { unique: { key: "k" } }),
      /Cannot start a workflow run on queue 'bad' with 'unique'/,
    );
    assert.equal((await storage.stats("bad")).total, 0, "nothing was written");
    assert.deepEqual(await db.admin().listRuns(), []);
  },
);
