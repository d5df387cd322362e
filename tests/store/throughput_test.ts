import assert from "node:assert/strict";
import { SqliteStorage } from "../../mod.ts";
import { OutcomeCounts, throughputSince } from "../../lib/store/throughput.ts";
import { tempDatabase } from "../_helpers.ts";

Deno.test("OutcomeCounts adds outcomes up per queue and minute, however they interleave", async () => {
  await using tmp = await tempDatabase();
  SqliteStorage.setup(tmp.db);
  const minute = 60_000 * 29_000_000;
  const counts = new OutcomeCounts();
  counts.add("a", "done", minute + 1);
  counts.add("a", "done", minute + 59_999);
  counts.add("b", "done", minute + 2); // another queue, same minute
  counts.add("a", "failed", minute + 60_000); // the next minute
  counts.add("a", "done", minute + 3); // back to the first
  counts.add("b", "killed", minute + 4);
  counts.write(tmp.db);
  counts.write(tmp.db); // a second write adds to the same rows
  assert.deepEqual(throughputSince(tmp.db, minute).map((row) => ({ ...row })), [
    { queue: "a", minute, done: 6, failed: 0, killed: 0 },
    { queue: "b", minute, done: 2, failed: 0, killed: 2 },
    { queue: "a", minute: minute + 60_000, done: 0, failed: 2, killed: 0 },
  ]);
});
