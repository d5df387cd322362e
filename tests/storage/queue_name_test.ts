/**
 * Queue names: a NUL character is refused everywhere a queue is named (SQLite's text ends at a
 * NUL in some drivers, so "a\0b" and "a" could be one queue), and `makeShared()` without a
 * queue says what it needs instead of throwing a raw TypeError.
 *
 * @module
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { Config, SharedSqliteStorage, SqliteStorage } from "../../mod.ts";
import { captureIo, main } from "../../lib/cli/mod.ts";
import { tempDatabase } from "../_helpers.ts";

const NUL_QUEUE = "emails\0bulk";

function namesNul(error: unknown): boolean {
  return error instanceof TypeError && /'queue'/.test(error.message) &&
    /NUL/.test(error.message);
}

Deno.test("Config, SqliteStorage and makeShared() throw a TypeError naming the NUL when a queue name contains one", async () => {
  await using tmp = await tempDatabase();
  assert.throws(() => new Config(NUL_QUEUE), namesNul);
  assert.throws(() => new Config("ok").withQueue(NUL_QUEUE), namesNul);
  assert.throws(() => new SqliteStorage(tmp.db, NUL_QUEUE), namesNul);
  assert.throws(() => SqliteStorage.newInQueue(tmp.db, NUL_QUEUE), namesNul);
  assert.throws(() => new SqliteStorage(tmp.db, "ok").forQueue(NUL_QUEUE), namesNul);
  const shared = new SharedSqliteStorage(tmp.db);
  assert.throws(() => shared.makeShared(NUL_QUEUE), namesNul);
  assert.deepEqual(shared.queues, [], "the refused queue was not registered");
});

Deno.test("SharedSqliteStorage.makeShared() throws a TypeError saying a queue is needed when it is called without one", async () => {
  await using tmp = await tempDatabase();
  const shared = new SharedSqliteStorage(tmp.db);
  for (const queue of [undefined, 42, null, {}]) {
    assert.throws(
      () => shared.makeShared(queue as unknown as string),
      (error: unknown) =>
        error instanceof TypeError &&
        /^Cannot make a shared storage as 'queue' must be a queue name or a Config/.test(
          error.message,
        ),
      String(queue),
    );
  }
  assert.deepEqual(shared.queues, []);
  assert.equal(shared.makeShared("fine").queue, "fine");
});

Deno.test("apalis push and apalis work exit 2 naming the NUL, and create no database, when the queue name contains one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "apalis_nul_" });
  try {
    const path = `${dir}/new.db`;
    for (const args of [["push", NUL_QUEUE, "{}"], ["work", NUL_QUEUE, "--exec", "true"]]) {
      const io = captureIo({ env: { APALIS_DB: path } });
      const code = await main(args, io);
      assert.equal(code, 2, `${args[0]}: ${io.err}`);
      assert.match(io.err, /NUL/);
      assert.equal(existsSync(path), false, `${args[0]} created the database`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
