/**
 * `meta` that JSON cannot encode (a BigInt, a cycle) is refused at push with an error naming the
 * task's meta and the key, through every way of pushing; nothing is written.
 *
 * @module
 */
import assert from "node:assert/strict";
import { SqliteStorage, Task } from "../../mod.ts";
import { tempDatabase } from "../_helpers.ts";

function cyclic(): Record<string, unknown> {
  const value: Record<string, unknown> = { name: "loop" };
  value.self = value;
  return value;
}

/** A meta that cannot be encoded, and the key the error must name. */
const CASES: [label: string, meta: () => Record<string, unknown>, key: string][] = [
  ["a BigInt", () => ({ ok: 1, a: 1n }), "a"],
  ["a cycle", () => ({ ok: 1, loop: cyclic() }), "loop"],
  ["a toJSON that throws", () => ({
    ok: 1,
    bad: {
      toJSON() {
        throw new Error("no JSON for you");
      },
    },
  }), "bad"],
];

/** The error names the queue, the task's meta, the key and the reason; it is a TypeError. */
function namesMeta(key: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof TypeError, `a TypeError, got ${error}`);
    assert.match(error.message, /^Cannot push task to queue 'q' as its 'meta' cannot be encoded/);
    assert.match(error.message, new RegExp(`key '${key}'`));
    return true;
  };
}

Deno.test("SqliteStorage push methods reject meta that JSON cannot encode with a TypeError naming the meta's key, and write nothing", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "q");
  for (const [label, meta, key] of CASES) {
    const check = namesMeta(key);
    await assert.rejects(storage.push(1, { meta: meta() }), check, `push: ${label}`);
    await assert.rejects(storage.pushTask(new Task(1, { meta: meta() })), check, label);
    assert.throws(() => storage.pushSync(1, { meta: meta() }), check, `pushSync: ${label}`);
    // pushAll is all or nothing: the good task before the bad one is not written either.
    await assert.rejects(
      storage.pushAll([new Task(0), new Task(1, { meta: meta() })]),
      check,
      `pushAll: ${label}`,
    );
    await assert.rejects(storage.pushStart(1, { meta: meta() }), check, `pushStart: ${label}`);
  }
  const built = Task.builder(1).meta("fine", "yes").meta("count", 2n).build();
  await assert.rejects(storage.pushTask(built), namesMeta("count"), "Task.builder().meta()");
  const total = tmp.db.get<{ n: number }>("SELECT count(*) AS n FROM apalis_tasks")!.n;
  assert.equal(total, 0, "nothing was written");
  const runs = tmp.db.get<{ n: number }>("SELECT count(*) AS n FROM apalis_runs")!.n;
  assert.equal(runs, 0, "no workflow run was started");
});
