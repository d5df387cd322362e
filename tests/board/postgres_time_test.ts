/**
 * The board on PostgreSQL takes time from the database, as the admin it is given does: its
 * repairs must not date tasks by the clock of whichever host serves the board.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createBoardHandler } from "../../board.ts";
import { PostgresStorage } from "../../postgres.ts";
import { FakeClock } from "../_helpers.ts";
import { pgTest, tempPostgres } from "../_postgres.ts";

const DAY = 86_400_000;

pgTest(
  "the board's retry and kill on PostgreSQL date tasks by the database's clock, not the board host's",
  async () => {
    await using db = await tempPostgres();
    // The database's clock runs a day ahead of this host's.
    await db.pg.sql.unsafe(`CREATE OR REPLACE FUNCTION apalis_now() RETURNS bigint LANGUAGE sql
    STABLE AS $$ SELECT floor(extract(epoch FROM now() + interval '1 day') * 1000)::bigint $$`);
    const storage = new PostgresStorage(db.pg, "email");
    const id = await storage.push({ to: "a@example.com" });
    const board = createBoardHandler(PostgresStorage.admin(db.pg));

    const killed = await board(
      new Request(`http://localhost/api/tasks/${id}/kill`, { method: "POST" }),
    );
    assert.equal(killed.status, 200, await killed.text());
    const afterKill = (await storage.fetchById(id))!;
    assert.equal(afterKill.status, "killed");
    assert.ok(
      afterKill.doneAt! > Date.now() + DAY - 60_000,
      `done at the database's time: ${afterKill.doneAt}`,
    );

    const retried = await board(
      new Request(`http://localhost/api/tasks/${id}/retry`, { method: "POST" }),
    );
    assert.equal(retried.status, 200, await retried.text());
    const afterRetry = (await storage.fetchById(id))!;
    assert.equal(afterRetry.status, "pending");
    assert.ok(
      afterRetry.runAt > Date.now() + DAY - 60_000,
      `due at the database's time: ${afterRetry.runAt}`,
    );

    // A clock given to the board still wins (tests inject one).
    const clock = new FakeClock(Date.UTC(2030, 0, 1));
    const fixed = createBoardHandler(PostgresStorage.admin(db.pg), { clock });
    const response = await fixed(
      new Request(`http://localhost/api/tasks/${id}/kill`, { method: "POST" }),
    );
    assert.equal(response.status, 200, await response.text());
    assert.equal((await storage.fetchById(id))!.doneAt, Date.UTC(2030, 0, 1));
  },
);
