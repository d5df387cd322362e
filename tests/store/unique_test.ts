/**
 * Unique pushes, what only SQLite has: `pushSync` claims the key in the caller's transaction
 * (a rollback releases it; a duplicate id undoes its claim and leaves the caller's transaction
 * usable), deleted and vacuumed tasks take their key rows with them, and a version 5 file
 * upgrades.
 *
 * @module
 */
import assert from "node:assert/strict";
import { DuplicateTaskError, SqliteStorage } from "../../mod.ts";
import { migrate, SCHEMA_VERSION } from "../../lib/store/schema.ts";
import { FakeClock, tempDatabase } from "../_helpers.ts";

Deno.test("pushSync() with unique claims the key in the caller's transaction; a rollback releases it", async () => {
  await using temp = await tempDatabase();
  const { db } = temp;
  db.exec("CREATE TABLE users (email TEXT)");
  const storage = new SqliteStorage<string>(db, "welcome");
  const unique = { key: "welcome:ada" };
  assert.throws(() =>
    db.transaction(() => {
      storage.pushSync("a", { unique });
      throw new Error("the caller gives up");
    }), /the caller gives up/);
  assert.equal(db.get<{ n: number }>("SELECT count(*) AS n FROM apalis_unique")!.n, 0);

  let first = "";
  db.transaction(() => {
    db.run("INSERT INTO users (email) VALUES (?)", ["ada@example.com"]);
    first = storage.pushSync("b", { unique });
    assert.equal(storage.pushSync("c", { unique }), first, "a duplicate in the same transaction");
  });
  assert.equal(storage.pushSync("d", { unique }), first, "outside a transaction too");

  // A duplicate id: DuplicateTaskError, the key is not claimed, the caller's transaction goes on.
  const other = { key: "welcome:bob" };
  db.transaction(() => {
    db.run("INSERT INTO users (email) VALUES (?)", ["bob@example.com"]);
    assert.throws(() => storage.pushSync("e", { id: first, unique: other }), DuplicateTaskError);
  });
  assert.equal(db.get<{ n: number }>("SELECT count(*) AS n FROM users")!.n, 2);
  const bob = await storage.pushDetailed("f", { unique: other });
  assert.equal(bob.inserted, true, "the failed push claimed nothing");
  assert.deepEqual(
    (await storage.listTasks({ queue: "welcome" })).map((t) => t.args).sort(),
    ["b", "f"],
  );
});

Deno.test("deleting or vacuuming a unique task removes its key's row; a replaced holder keeps its successor's", async () => {
  await using temp = await tempDatabase();
  const { db } = temp;
  const clock = new FakeClock();
  const storage = new SqliteStorage<string>(db, "rows", { clock });
  const admin = SqliteStorage.admin(db, { clock });
  const keyRows = () =>
    db.values<[string, string]>("SELECT key, task_id FROM apalis_unique ORDER BY key");
  const a = await storage.push("a", { unique: { key: "a" } });
  const b = await storage.push("b", { unique: { key: "b" } });
  assert.deepEqual(keyRows(), [["a", a], ["b", b]]);
  assert.equal(await admin.delete(a), true);
  assert.deepEqual(keyRows(), [["b", b]]);
  await admin.kill(b);
  const b2 = await storage.push("b2", { unique: { key: "b" } });
  assert.notEqual(b2, b);
  assert.equal(await admin.delete(b), true);
  assert.deepEqual(keyRows(), [["b", b2]]);
  await admin.kill(b2);
  clock.advance(1_000);
  assert.equal(await admin.vacuum({ olderThanMs: 0 }), 1);
  assert.deepEqual(keyRows(), []);
});

Deno.test("SqliteStorage.setup() upgrades a version 5 file to unique tasks, keeping its tasks", async () => {
  await using temp = await tempDatabase({ setup: false });
  const { db } = temp;
  assert.equal(migrate(db, 5), 5);
  db.run(
    "INSERT INTO apalis_tasks (id, queue, args, run_at, created_at) VALUES ('old', 'q', X'7b7d', 0, 0)",
  );
  assert.equal(SqliteStorage.setup(db), SCHEMA_VERSION);
  const storage = new SqliteStorage<unknown>(db, "q");
  const old = await storage.fetchById("old");
  assert.deepEqual([old?.args, old?.uniqueKey], [{}, undefined]);
  const pushed = await storage.pushDetailed({}, { unique: {} });
  assert.equal(pushed.inserted, true, "the old task has no key: it blocks nothing");
  assert.equal((await storage.pushDetailed({}, { unique: {} })).id, pushed.id);
});
