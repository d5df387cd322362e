/**
 * Unique pushes, what only PostgreSQL has: `pushTx` claims the key in the caller's transaction
 * (a rollback releases it; a concurrent push of the key waits for that transaction), deleted
 * and vacuumed tasks take their key rows with them, and a version 1 database upgrades.
 *
 * @module
 */
import assert from "node:assert/strict";
import { PostgresStorage } from "../../postgres.ts";
import { migratePostgres, POSTGRES_SCHEMA_VERSION } from "../../lib/postgres/schema.ts";
import { FakeClock } from "../_helpers.ts";
import { pgTest, tempPostgres } from "../_postgres.ts";

pgTest(
  "pushTx() with unique: the key is claimed in the caller's transaction; a rollback releases it, a concurrent push waits for it",
  async () => {
    await using db = await tempPostgres();
    const storage = new PostgresStorage<string>(db.pg, "tx");
    const unique = { key: "k" };
    // Rolled back: nothing stays, and the key is free.
    await assert.rejects(
      db.pg.sql.begin(async (tx) => {
        assert.match(await storage.pushTx(tx, "a", { unique }), /^[0-9A-Z]{26}$/);
        throw new Error("the caller gives up");
      }),
      /the caller gives up/,
    );
    assert.equal((await storage.stats("tx")).total, 0);
    const [keys] = await db.pg.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM apalis_unique`;
    assert.equal(keys!.n, 0);

    // Committed, with a push of the same key from another connection while it is open: that
    // push waits for the transaction and then finds its task.
    let inTx = "";
    let concurrent: Promise<{ id: string; inserted: boolean }> | undefined;
    await db.pg.sql.begin(async (tx) => {
      inTx = await storage.pushTx(tx, "b", { unique });
      assert.equal(await storage.pushTx(tx, "c", { unique }), inTx, "seen in the same transaction");
      concurrent = storage.pushDetailed("d", { unique });
      const settled = await Promise.race([
        concurrent.then(() => "settled"),
        new Promise((resolve) => setTimeout(() => resolve("waiting"), 300)),
      ]);
      assert.equal(settled, "waiting", "the other push waits for the key's row lock");
    });
    assert.deepEqual(await concurrent, { id: inTx, inserted: false });
    assert.deepEqual((await storage.listTasks({ queue: "tx" })).map((t) => t.args), ["b"]);
  },
);

pgTest(
  "deleting or vacuuming a unique task removes its key's row; a replaced holder keeps the row of its successor",
  async () => {
    await using db = await tempPostgres();
    const clock = new FakeClock();
    const storage = new PostgresStorage<string>(db.pg, "rows", { clock });
    const admin = PostgresStorage.admin(db.pg, { clock });
    const keyRows = async () =>
      (await db.pg.sql<{ key: string; task_id: string }[]>`
        SELECT key, task_id FROM apalis_unique ORDER BY key`).map((row) => [row.key, row.task_id]);
    const a = await storage.push("a", { unique: { key: "a" } });
    const b = await storage.push("b", { unique: { key: "b" } });
    assert.deepEqual(await keyRows(), [["a", a], ["b", b]]);
    assert.equal(await admin.delete(a), true);
    assert.deepEqual(await keyRows(), [["b", b]]);
    // b is killed: the next push of its key replaces it as holder; deleting b leaves that row.
    await admin.kill(b);
    const b2 = await storage.push("b2", { unique: { key: "b" } });
    assert.notEqual(b2, b);
    assert.equal(await admin.delete(b), true);
    assert.deepEqual(await keyRows(), [["b", b2]]);
    await admin.kill(b2);
    clock.advance(1_000);
    assert.equal(await admin.vacuum({ olderThanMs: 0 }), 1);
    assert.deepEqual(await keyRows(), []);
  },
);

pgTest(
  "a version 1 database upgrades to unique tasks, keeping its tasks",
  async () => {
    await using db = await tempPostgres({ setup: false });
    assert.equal(await migratePostgres(db.pg.sql, db.url, 1), 1);
    await db.pg.sql`
      INSERT INTO apalis_tasks (id, queue, args, run_at, created_at)
      VALUES ('old', 'q', '\\x7b7d'::bytea, 0, 0)`;
    assert.equal(await PostgresStorage.setup(db.pg), POSTGRES_SCHEMA_VERSION);
    const storage = new PostgresStorage<unknown>(db.pg, "q");
    const old = await storage.fetchById("old");
    assert.deepEqual([old?.args, old?.uniqueKey], [{}, undefined]);
    // The old task has no key: it blocks nothing.
    const pushed = await storage.pushDetailed({}, { unique: {} });
    assert.equal(pushed.inserted, true);
    assert.equal((await storage.pushDetailed({}, { unique: {} })).id, pushed.id);
  },
);
