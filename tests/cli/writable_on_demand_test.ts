import assert from "node:assert/strict";
import { type Database, openDatabase, SqliteStorage } from "../../mod.ts";
import { WritableOnDemand } from "../../lib/cli/writable_on_demand.ts";
import { tempDatabase } from "../_helpers.ts";

/** A WritableOnDemand on `path`, counting the writable connections it opens. */
function onDemand(path: string): { db: WritableOnDemand; opened: Database[] } {
  const opened: Database[] = [];
  const db = new WritableOnDemand(openDatabase(path, { readOnly: true }), () => {
    const writer = openDatabase(path);
    opened.push(writer);
    return writer;
  });
  return { db, opened };
}

Deno.test("WritableOnDemand reads through the read-only connection and opens a writable one at the first write, once", async () => {
  await using tmp = await tempDatabase();
  const first = await new SqliteStorage(tmp.db, "q").push("a");
  const second = await new SqliteStorage(tmp.db, "q").push("b");
  const { db, opened } = onDemand(tmp.path);
  try {
    const storage = new SqliteStorage<string>(db, "q");
    assert.equal((await storage.stats()).pending, 2);
    assert.equal((await storage.fetchById(first))?.args, "a");
    assert.equal(db.writable, false);
    assert.equal(opened.length, 0, "reading opened no writable connection");
    // kill() writes with UPDATE … RETURNING through all(), outside a transaction.
    assert.equal((await storage.kill(first)).status, "killed");
    assert.equal(db.writable, true);
    assert.equal(opened.length, 1);
    // From then on, everything goes through the writable connection.
    assert.equal((await storage.retry(first)).status, "pending");
    assert.equal(await storage.delete(second), true);
    assert.equal((await storage.stats()).total, 1);
    assert.equal(opened.length, 1, "one writable connection");
  } finally {
    db.close();
  }
  assert.equal(db.closed, true);
  assert.equal(opened[0]!.closed, true);
  const row = tmp.db.get<{ status: string }>("SELECT status FROM apalis_tasks WHERE id = ?", [
    first,
  ]);
  assert.equal(row?.status, "pending", "the writes reached the file");
});

Deno.test("WritableOnDemand moves run(), exec() and transaction() to the writable connection, and nothing runs twice", async () => {
  for (const write of ["run", "exec", "transaction"] as const) {
    await using tmp = await tempDatabase();
    tmp.db.exec("CREATE TABLE t (x INTEGER)");
    const { db, opened } = onDemand(tmp.path);
    try {
      if (write === "run") db.run("INSERT INTO t (x) VALUES (?)", [1]);
      if (write === "exec") db.exec("INSERT INTO t (x) VALUES (1)");
      if (write === "transaction") {
        db.transaction(() => {
          assert.equal(db.get<{ n: number }>("SELECT count(*) AS n FROM t")?.n, 0);
          db.run("INSERT INTO t (x) VALUES (?)", [1]);
        });
      }
      assert.equal(opened.length, 1, write);
      assert.equal(db.inTransaction, false);
    } finally {
      db.close();
    }
    assert.deepEqual(tmp.db.all<{ x: number }>("SELECT x FROM t").map((r) => r.x), [1], write);
  }
});

Deno.test("WritableOnDemand passes other errors through without opening a writable connection", async () => {
  await using tmp = await tempDatabase();
  const { db, opened } = onDemand(tmp.path);
  try {
    assert.throws(() => db.run("INSERT INTO no_such_table (x) VALUES (1)"), /no such table/);
    assert.throws(() => db.transaction(() => db.get("SELECT nonsense FROM apalis_tasks")));
    assert.throws(() =>
      db.transaction(() => {
        throw new RangeError("the caller's own error");
      }), RangeError);
    assert.equal(opened.length, 0);
    assert.equal(db.inTransaction, false);
  } finally {
    db.close();
  }
});
