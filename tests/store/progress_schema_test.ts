/**
 * A database whose schema predates progress and logs (the library was upgraded, `setup()` not
 * run since) still reads its tasks, without progress; `setup()` then upgrades it, keeping them.
 *
 * @module
 */
import assert from "node:assert/strict";
import { SqliteStorage } from "../../mod.ts";
import { PostgresStorage } from "../../postgres.ts";
import { migrate } from "../../lib/store/schema.ts";
import { migratePostgres } from "../../lib/postgres/schema.ts";
import { tempDatabase } from "../_helpers.ts";
import { pgTest, tempPostgres } from "../_postgres.ts";

Deno.test("SQLite: tasks of a version 11 file read without progress; setup() upgrades it", async () => {
  await using temp = await tempDatabase({ setup: false });
  migrate(temp.db, 11); // the version before progress and logs (migration 12)
  const storage = new SqliteStorage<number>(temp.db, "old");
  const id = await storage.push(1);
  const [read] = await storage.backend.taskGetMany([id]); // what waitFor reads
  assert.equal((await storage.fetchById(id))?.args, 1);
  assert.equal(read?.id, id);
  assert.deepEqual(await storage.logs(id), [], "no logs table yet: no lines");
  SqliteStorage.setup(temp.db);
  assert.equal((await storage.fetchById(id))?.args, 1);
  assert.deepEqual(await storage.logs(id), []);
});

pgTest(
  "PostgreSQL: tasks of a version 7 database read without progress; setup() upgrades it",
  async () => {
    await using db = await tempPostgres({ setup: false });
    assert.equal(await migratePostgres(db.pg.sql, db.url, 7), 7);
    const storage = new PostgresStorage<number>(db.pg, "old");
    const id = await storage.push(1);
    const [read] = await storage.backend.taskGetMany([id]); // what waitFor reads
    assert.equal((await storage.fetchById(id))?.args, 1);
    assert.equal(read?.id, id);
    assert.deepEqual(await storage.logs(id), [], "no logs table yet: no lines");
    await PostgresStorage.setup(db.pg);
    assert.equal((await storage.fetchById(id))?.args, 1);
    assert.deepEqual(await storage.logs(id), []);
  },
);
