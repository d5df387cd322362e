import assert from "node:assert/strict";
import { SqliteStorage, Task } from "../../mod.ts";
import { type TaskAck, taskAck, taskAckMany, taskClaim, taskKill } from "../../lib/store/tasks.ts";
import type { Database } from "../../lib/sqlite/types.ts";
import { tempDatabase } from "../_helpers.ts";

function done(
  id: string,
  attempt: number,
  doneAt: number,
  result: Uint8Array | string | null,
): TaskAck {
  return { id, queue: "q", attempt, status: "done", result, error: null, runAt: null, doneAt };
}

/**
 * Pushes `n` tasks to queue "q" and claims them all under worker "w": their ids, in order, and
 * the time of the claim (taken after the push, so that every task is due).
 */
async function claimAll(db: Database, n: number): Promise<{ ids: string[]; now: number }> {
  const ids = await new SqliteStorage<number>(db, "q").pushAll(
    Array.from({ length: n }, (_, i) => new Task(i)),
  );
  const now = Date.now();
  assert.equal(taskClaim(db, { queue: "q", worker: "w", now, limit: n }).length, n);
  return { ids, now };
}

/** The ids of six claimed tasks, to name them one by one. */
type SixIds = [string, string, string, string, string, string];

/** Gives a claimed task back (as orphan rescue does) and claims it again under `worker`. */
function reclaim(db: Database, id: string, worker: string, now: number): void {
  db.run("UPDATE apalis_tasks SET status = 'pending', lock_by = NULL WHERE id = ?", [id]);
  assert.equal(taskClaim(db, { queue: "q", worker, now, limit: 1 })[0]?.id, id);
}

Deno.test("taskAckMany() records a batch of outcomes and names exactly the attempts fenced off meanwhile", async () => {
  await using tmp = await tempDatabase();
  const { db } = tmp;
  const storage = new SqliteStorage<number>(db, "q");
  const { ids, now } = await claimAll(db, 6);
  const [plain, killed, staleAttempt, otherWorker, secondAttempt, withResult] = ids as SixIds;
  // Meanwhile: one task is killed, two are rescued and claimed again by this worker (a second
  // attempt), one is rescued and claimed by another worker.
  assert.ok(taskKill(db, killed, "killed by hand", now));
  reclaim(db, staleAttempt, "w", now);
  reclaim(db, secondAttempt, "w", now);
  reclaim(db, otherWorker, "v", now);

  const result = new Uint8Array([0, 1, 2, 254, 255]);
  const acks = [
    done(plain, 1, now + 1, null),
    done(killed, 1, now + 2, null),
    done(staleAttempt, 1, now + 3, null),
    done(otherWorker, 1, now + 4, null),
    done(secondAttempt, 2, now + 5, null),
    done(withResult, 1, now + 6, result),
  ];
  const fenced = db.transaction(() => taskAckMany(db, "w", acks));

  assert.deepEqual([...fenced].sort(), [killed, staleAttempt, otherWorker].sort());
  const rows = new Map(
    db.all<
      {
        id: string;
        status: string;
        attempts: number;
        lock_by: string | null;
        done_at: number | null;
        last_result: Uint8Array | null;
      }
    >("SELECT id, status, attempts, lock_by, done_at, last_result FROM apalis_tasks")
      .map((row) => [row.id, row]),
  );
  const state = (id: string) => {
    const row = rows.get(id)!;
    return [row.status, row.attempts, row.lock_by, row.done_at];
  };
  assert.deepEqual(state(plain), ["done", 1, "w", now + 1]);
  assert.deepEqual(state(secondAttempt), ["done", 2, "w", now + 5]);
  assert.deepEqual(state(withResult), ["done", 1, "w", now + 6]);
  assert.deepEqual([...rows.get(withResult)!.last_result!], [...result]);
  assert.equal(rows.get(plain)!.last_result, null);
  assert.equal(state(killed)[0], "killed");
  assert.deepEqual(state(staleAttempt), ["running", 2, "w", null]);
  assert.deepEqual(state(otherWorker), ["running", 2, "v", null]);
  // Only the outcomes that were recorded are counted.
  const counted = (await storage.throughput({ minutes: 10 })).reduce(
    (sum, point) => sum + point.done,
    0,
  );
  assert.equal(counted, 3);
});

Deno.test("taskAckMany() records every outcome of a batch that nothing fenced off", async () => {
  await using tmp = await tempDatabase();
  const { db } = tmp;
  const storage = new SqliteStorage<number>(db, "q");
  await storage.pushAll(Array.from({ length: 150 }, (_, i) => new Task(i)));
  const now = Date.now();
  const claimed = taskClaim(db, { queue: "q", worker: "w", now, limit: 150 });
  const fenced = db.transaction(() =>
    taskAckMany(db, "w", claimed.map((row, i) => done(row.id, row.attempts, now + i, null)))
  );
  assert.equal(fenced.size, 0);
  assert.deepEqual(await storage.stats("q"), {
    pending: 0,
    queued: 0,
    running: 0,
    done: 150,
    failed: 0,
    killed: 0,
    total: 150,
  });
  const doneAt = db.values<[string, number]>("SELECT id, done_at FROM apalis_tasks");
  const expected = new Map(claimed.map((row, i) => [row.id, now + i]));
  for (const [id, at] of doneAt) assert.equal(at, expected.get(id), `done_at of ${id}`);
});

Deno.test("taskAckMany() and taskAck() store results given as text as their UTF-8 bytes, batched or not", async () => {
  await using tmp = await tempDatabase();
  const { db } = tmp;
  const { ids, now } = await claimAll(db, 6);
  const [a, b, c, d, e, f] = ids as SixIds;
  const text = '{"s":"café 😀 \\u0000 \\ud800"}'; // JSON text: escapes stay escapes
  const long = `"${"é".repeat(3000)}"`; // past the batch's size limit: recorded on its own
  const bytes = new Uint8Array([0xff, 0x00, 0x7b]);
  db.transaction(() => {
    // All text: one statement that binds the results as text.
    assert.equal(taskAckMany(db, "w", [done(a, 1, now, text), done(b, 1, now, null)]).size, 0);
    // Text beside bytes: the text goes in hex too.
    assert.equal(taskAckMany(db, "w", [done(c, 1, now, text), done(d, 1, now, bytes)]).size, 0);
    assert.equal(taskAckMany(db, "w", [done(e, 1, now, long)]).size, 0);
    assert.ok(taskAck(db, "w", { ...done(f, 1, now, text), status: "killed" }));
  });
  const stored = new Map(
    db.values<[string, string, Uint8Array | null]>(
      "SELECT id, typeof(last_result), last_result FROM apalis_tasks",
    ).map(([id, type, value]) => [id, [type, value === null ? null : [...value]]]),
  );
  const utf8 = (value: string) => [...new TextEncoder().encode(value)];
  assert.deepEqual(stored.get(a), ["blob", utf8(text)]);
  assert.deepEqual(stored.get(b), ["null", null]);
  assert.deepEqual(stored.get(c), ["blob", utf8(text)]);
  assert.deepEqual(stored.get(d), ["blob", [...bytes]]);
  assert.deepEqual(stored.get(e), ["blob", utf8(long)]);
  assert.deepEqual(stored.get(f), ["blob", utf8(text)]);
});

Deno.test("taskAckMany() records acks that share their finish times time by time, fenced ones named", async () => {
  await using tmp = await tempDatabase();
  const { db } = tmp;
  const storage = new SqliteStorage<number>(db, "q");
  const { ids, now } = await claimAll(db, 8);
  const [killed, otherWorker, stale] = ids as [string, string, string];
  assert.ok(taskKill(db, killed, "killed by hand", now));
  reclaim(db, otherWorker, "v", now);
  reclaim(db, stale, "w", now);
  // Three finish times among the eight (the fenced ones at each), all first attempts.
  const finishedAt = (i: number) => now + 10 + (i % 3);
  const fenced = db.transaction(() =>
    taskAckMany(db, "w", ids.map((id, i) => done(id, 1, finishedAt(i), null)))
  );
  assert.deepEqual([...fenced].sort(), [killed, otherWorker, stale].sort());
  const rows = new Map(
    db.values<[string, string, number, string, number | null]>(
      "SELECT id, status, attempts, lock_by, done_at FROM apalis_tasks",
    ).map(([id, ...rest]) => [id, rest]),
  );
  ids.forEach((id, i) => {
    if (fenced.has(id)) return;
    assert.deepEqual(rows.get(id), ["done", 1, "w", finishedAt(i)], `task ${i}`);
  });
  assert.deepEqual(rows.get(otherWorker), ["running", 2, "v", null]);
  assert.deepEqual(rows.get(stale), ["running", 2, "w", null]);
  const counted = (await storage.throughput({ minutes: 10 })).reduce((n, p) => n + p.done, 0);
  assert.equal(counted, 5);
});
