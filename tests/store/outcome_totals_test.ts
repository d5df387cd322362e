/**
 * Migrations 10 and 11 (SQLite), 6 and 7 (PostgreSQL): outcome and start totals that never
 * decrease. An upgraded database counts the minutes it had (each ended attempt as started); any
 * DELETE of minutes, by whatever path, folds them into the totals in its own transaction.
 *
 * @module
 */
import assert from "node:assert/strict";
import { SqliteStorage } from "../../mod.ts";
import { PostgresBackend, PostgresStorage } from "../../postgres.ts";
import { SqliteBackend } from "../../lib/store/backend.ts";
import { migrate } from "../../lib/store/schema.ts";
import { migratePostgres } from "../../lib/postgres/schema.ts";
import { tempDatabase } from "../_helpers.ts";
import { pgTest, tempPostgres } from "../_postgres.ts";

const MINUTE = 60_000;

/** Rows as plain objects (drivers hand out their own kinds). */
const plain = (rows: readonly object[]) => rows.map((row) => ({ ...row }));

Deno.test("SQLite: setup() upgrades a version 8 file, whose minutes then survive any delete as totals", async () => {
  await using temp = await tempDatabase({ setup: false });
  const { db } = temp;
  assert.equal(migrate(db, 8), 8);
  db.run(
    `INSERT INTO apalis_throughput (queue, minute, done, failed, killed)
     VALUES ('a', 0, 5, 1, 0), ('a', ?1, 2, 0, 1), ('b', ?1, 7, 0, 0)`,
    [MINUTE],
  );
  SqliteStorage.setup(db);
  const backend = SqliteBackend.of(db);
  const expected = [
    { queue: "a", started: 9, done: 7, failed: 1, killed: 1 },
    { queue: "b", started: 7, done: 7, failed: 0, killed: 0 },
  ];
  assert.deepEqual(plain(await backend.outcomeTotals()), expected);
  db.run("DELETE FROM apalis_throughput WHERE minute = 0");
  assert.deepEqual(plain(await backend.outcomeTotals()), expected, "a delete by hand");
  await backend.taskVacuum(10 * MINUTE, 100);
  assert.equal(db.get<{ n: number }>("SELECT count(*) AS n FROM apalis_throughput")?.n, 0);
  assert.deepEqual(plain(await backend.outcomeTotals()), expected, "vacuum");
  assert.throws(() =>
    db.transaction(() => {
      db.run("DELETE FROM apalis_outcome_totals");
      db.run("INSERT INTO apalis_throughput (queue, minute, done) VALUES ('a', 0, 1)");
      db.run("DELETE FROM apalis_throughput");
      throw new Error("rolled back");
    }), /rolled back/);
  assert.deepEqual(
    plain(await backend.outcomeTotals()),
    expected,
    "a rolled-back delete counts nothing",
  );
});

pgTest(
  "PostgreSQL: setup() upgrades a version 4 database, whose minutes then survive any delete as totals",
  async () => {
    await using db = await tempPostgres({ setup: false });
    assert.equal(await migratePostgres(db.pg.sql, db.url, 4), 4);
    await db.pg.sql`
    INSERT INTO apalis_throughput (queue, minute, shard, done, failed, killed)
    VALUES ('a', 0, 0, 5, 1, 0), ('a', 0, 3, 1, 0, 0), ('a', ${MINUTE}, 1, 1, 0, 1),
      ('b', ${MINUTE}, 0, 7, 0, 0)`;
    await PostgresStorage.setup(db.pg);
    const backend = PostgresBackend.of(db.pg);
    const expected = [
      { queue: "a", started: 9, done: 7, failed: 1, killed: 1 },
      { queue: "b", started: 7, done: 7, failed: 0, killed: 0 },
    ];
    assert.deepEqual(plain(await backend.outcomeTotals()), expected);
    await db.pg.sql`DELETE FROM apalis_throughput WHERE minute = 0`;
    assert.deepEqual(plain(await backend.outcomeTotals()), expected, "a delete by hand");
    await backend.taskVacuum(10 * MINUTE, 100);
    const [left] = await db.pg.sql<
      { n: number }[]
    >`SELECT count(*)::int AS n FROM apalis_throughput`;
    assert.equal(left!.n, 0);
    assert.deepEqual(plain(await backend.outcomeTotals()), expected, "vacuum");
  },
);

Deno.test("SQLite: setup() upgrades a version 10 file: minutes and totals gain a started count, folded like the outcomes", async () => {
  await using temp = await tempDatabase({ setup: false });
  const { db } = temp;
  assert.equal(migrate(db, 10), 10);
  db.run(
    `INSERT INTO apalis_throughput (queue, minute, done, failed, killed)
     VALUES ('a', 0, 5, 1, 0), ('a', ?1, 2, 0, 1)`,
    [MINUTE],
  );
  db.run("DELETE FROM apalis_throughput WHERE minute = 0"); // folded into the totals
  SqliteStorage.setup(db);
  const backend = SqliteBackend.of(db);
  const expected = [{ queue: "a", started: 9, done: 7, failed: 1, killed: 1 }];
  assert.deepEqual(plain(await backend.outcomeTotals()), expected);
  await backend.taskVacuum(10 * MINUTE, 100);
  assert.deepEqual(plain(await backend.outcomeTotals()), expected, "vacuum folds started too");
});

pgTest(
  "PostgreSQL: setup() upgrades a version 6 database: minutes and totals gain a started count, folded like the outcomes",
  async () => {
    await using db = await tempPostgres({ setup: false });
    assert.equal(await migratePostgres(db.pg.sql, db.url, 6), 6);
    await db.pg.sql`
    INSERT INTO apalis_throughput (queue, minute, shard, done, failed, killed)
    VALUES ('a', 0, 0, 5, 1, 0), ('a', ${MINUTE}, 1, 2, 0, 1)`;
    await db.pg.sql`DELETE FROM apalis_throughput WHERE minute = 0`;
    await PostgresStorage.setup(db.pg);
    const backend = PostgresBackend.of(db.pg);
    const expected = [{ queue: "a", started: 9, done: 7, failed: 1, killed: 1 }];
    assert.deepEqual(plain(await backend.outcomeTotals()), expected);
    await backend.taskVacuum(10 * MINUTE, 100);
    assert.deepEqual(plain(await backend.outcomeTotals()), expected, "vacuum folds started too");
  },
);
