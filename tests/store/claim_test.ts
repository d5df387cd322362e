import assert from "node:assert/strict";
import { SqliteStorage, Task } from "../../mod.ts";
import {
  type ClaimedRow,
  compareClaimOrder,
  taskClaim,
  taskClaimShared,
  taskNextRunAt,
  taskWaitingPriorities,
} from "../../lib/store/tasks.ts";
import { isExactText } from "../../lib/storage/codec.ts";
import { FakeClock, tempDatabase } from "../_helpers.ts";

/** Due and scheduled tasks at `priorities` in `queue`, pushed in a shuffled order. */
async function mixed(storage: SqliteStorage<number>, priorities: readonly number[]) {
  const now = storage.clock.now();
  const tasks: Task<number>[] = [];
  for (const [i, priority] of priorities.entries()) {
    for (let k = 0; k < 3; k++) {
      tasks.push(new Task(i * 10 + k, { priority, runAt: now - 1000 + k * 7 - i })); // due
      tasks.push(new Task(-(i * 10 + k), { priority, runAt: now + 60_000 + k })); // scheduled
    }
  }
  tasks.sort((a, b) => (a.args * 7919) % 13 - (b.args * 7919) % 13);
  await storage.pushAll(tasks);
}

/** The due waiting tasks of `queue` in claim order, read without the claim's statements. */
function expected(storage: SqliteStorage<number>, queue: string, now: number) {
  return storage.db.all<Pick<ClaimedRow, "id" | "priority" | "run_at">>(
    `SELECT id, priority, run_at FROM apalis_tasks
     WHERE queue = ? AND status = 'pending' AND run_at <= ?`,
    [queue, now],
  ).sort(compareClaimOrder).map((row) => row.id);
}

for (const count of [1, 3, 5, 70]) {
  Deno.test(`taskClaim() takes the due tasks of ${count} priorities in claim order and none of the scheduled ones`, async () => {
    await using tmp = await tempDatabase();
    const clock = new FakeClock();
    const storage = new SqliteStorage<number>(tmp.db, "q", { clock });
    const priorities = Array.from({ length: count }, (_, i) => (i * 37) % 101 - 50);
    await mixed(storage, priorities);
    const levels = taskWaitingPriorities(tmp.db, "q");
    if (count > 64) {
      assert.equal(levels, null, "past 64 priorities the claim names none");
    } else {
      assert.deepEqual(levels, [...priorities].sort((a, b) => b - a));
    }
    const order = expected(storage, "q", clock.now());
    assert.equal(order.length, count * 3);

    const now = clock.now();
    const first = taskClaim(tmp.db, { queue: "q", worker: "w", now, limit: 4 });
    assert.deepEqual(first.map((row) => row.id), order.slice(0, 4));
    // Asking for more than are due takes exactly the rest, and no scheduled task.
    const rest = taskClaim(tmp.db, { queue: "q", worker: "w", now, limit: 1000, ahead: true });
    assert.deepEqual(rest.map((row) => row.id), order.slice(4));
    assert.deepEqual(taskClaim(tmp.db, { queue: "q", worker: "w", now, limit: 10 }), []);
    assert.equal(taskNextRunAt(tmp.db, "q"), now + 60_000);
  });
}

Deno.test("taskClaimShared() takes each queue's due tasks in claim order across priorities", async () => {
  await using tmp = await tempDatabase();
  const clock = new FakeClock();
  const alpha = new SqliteStorage<number>(tmp.db, "alpha", { clock });
  const beta = alpha.forQueue<number>("beta");
  await mixed(alpha, [2, 0, 9]);
  await mixed(beta, [5]);
  const now = clock.now();
  const alphaOrder = expected(alpha, "alpha", now);
  const betaOrder = expected(beta, "beta", now);
  const rows = taskClaimShared(tmp.db, {
    now,
    wants: [
      { queue: "alpha", worker: "a", limit: 5 },
      { queue: "beta", worker: "b", limit: 100 },
      { queue: "empty", worker: "c", limit: 10 },
    ],
  });
  assert.deepEqual(
    rows.filter((row) => row.queue === "alpha").map((row) => row.id),
    alphaOrder.slice(0, 5),
  );
  assert.deepEqual(rows.filter((row) => row.queue === "beta").map((row) => row.id), betaOrder);
});

Deno.test("taskNextRunAt() finds the earliest run_at when it is in the lowest of several priorities", async () => {
  await using tmp = await tempDatabase();
  const clock = new FakeClock();
  const storage = new SqliteStorage<number>(tmp.db, "q", { clock });
  const now = clock.now();
  await storage.pushAll([
    new Task(1, { priority: 9, runAt: now + 5_000 }),
    new Task(2, { priority: 3, runAt: now + 4_000 }),
    new Task(3, { priority: -2, runAt: now + 1_000 }),
    new Task(4, { priority: -2, runAt: now + 9_000 }),
  ]);
  assert.equal(taskNextRunAt(tmp.db, "q"), now + 1_000);
  assert.equal(taskNextRunAt(tmp.db, "other"), undefined);
  assert.deepEqual(taskWaitingPriorities(tmp.db, "other"), []);
});

Deno.test("taskClaim() ahead skips last attempts but looks only at the first 4 × limit due tasks", async () => {
  await using tmp = await tempDatabase();
  const clock = new FakeClock();
  const storage = new SqliteStorage<number>(tmp.db, "q", { clock });
  const now = clock.now();
  // Ten tasks due first, each on its last attempt, then five that have attempts to spare.
  const last = await storage.pushAll(
    Array.from({ length: 10 }, (_, i) => new Task(i, { runAt: now - 100 + i })),
  );
  tmp.db.run(
    "UPDATE apalis_tasks SET attempts = max_attempts - 1 WHERE id IN (SELECT value FROM json_each(?))",
    [JSON.stringify(last)],
  );
  const spare = await storage.pushAll(
    Array.from({ length: 5 }, (_, i) => new Task(100 + i, { runAt: now - 50 + i })),
  );
  const ahead = (limit: number) =>
    taskClaim(tmp.db, { queue: "q", worker: "w", now, limit, ahead: true }).map((row) => row.id);

  assert.deepEqual(ahead(2), [], "the first 8 due tasks are all last attempts");
  assert.deepEqual(ahead(3), spare.slice(0, 2), "within the first 12: two with attempts to spare");
  assert.deepEqual(ahead(10), spare.slice(2));
  // A claim for free slots takes last attempts as they come.
  const direct = taskClaim(tmp.db, { queue: "q", worker: "w", now, limit: 20 });
  assert.deepEqual(direct.map((row) => row.id), last);
});

Deno.test("isExactText() accepts text that spells the stored bytes and nothing a driver mended", () => {
  const encoder = new TextEncoder();
  const exact = (text: string) => isExactText(text, encoder.encode(text).length);
  for (const text of ["", 'ascii {"n":1}', "é composed", "e\u0301", "𝄞 astral", "😀👩‍👩‍👧‍👦", "שלום"]) {
    assert.ok(exact(text), JSON.stringify(text));
  }
  // A genuine U+FFFD cannot be told from a mended sequence: the caller reads the bytes.
  assert.equal(exact("\ufffd"), false);
  // Bad bytes come back as U+FFFD, whatever the sizes.
  assert.equal(isExactText("\ufffd", 1), false); // X'FF'
  assert.equal(isExactText("a\ufffd", 4), false); // 'a' and a cut 4-byte sequence
  // Deno ends text at a NUL byte: X'3100' reads as "1".
  assert.equal(isExactText("1", 2), false);
  assert.equal(isExactText("é", 3), false); // X'C3A900'
});

Deno.test("taskClaim() with textArgs reads payloads as text with their stored size", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<unknown>(tmp.db, "q");
  await storage.push({ word: "café" });
  await storage.push("ascii");
  const now = storage.clock.now();
  const direct = taskClaim(tmp.db, { queue: "q", worker: "w", now, limit: 1, textArgs: true });
  const ahead = taskClaim(tmp.db, {
    queue: "q",
    worker: "w",
    now,
    limit: 5,
    ahead: true,
    textArgs: true,
  });
  assert.deepEqual(
    [...direct, ...ahead].map((row) => [row.args, row.args_bytes]),
    [['{"word":"café"}', 16], ['"ascii"', 7]],
  );
});
