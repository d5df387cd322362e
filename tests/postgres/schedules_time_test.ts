/**
 * Cron schedules on PostgreSQL without a clock take time from the database server, as claims
 * do: hosts whose clocks disagree agree on which ticks are due. The test moves the server's
 * clock (`apalis_now()`) a day ahead of this host's.
 *
 * @module
 */
import assert from "node:assert/strict";
import { PostgresStorage } from "../../postgres.ts";
import { pgTest, tempPostgres } from "../_postgres.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

pgTest("schedules on PostgreSQL read the database server's time, not the host's", async () => {
  await using db = await tempPostgres();
  const shift = (interval: string) =>
    db.pg.sql.unsafe(`CREATE OR REPLACE FUNCTION apalis_now() RETURNS bigint LANGUAGE sql
      STABLE AS $$ SELECT floor(extract(epoch FROM now() + interval '${interval}') * 1000)::bigint $$`);
  const storage = new PostgresStorage<string>(db.pg, "hourly");
  await storage.schedule("on-the-hour", "0 * * * *", "go");
  const [schedule] = await storage.listSchedules();
  assert.ok(schedule!.nextTick! <= Date.now() + HOUR, "the first tick after now");
  // The server's clock jumps a day ahead: by this host's clock nothing is due, by the
  // server's the ticks of a day are.
  await shift("1 day");
  const ids = await storage.enqueueDueSchedules();
  assert.equal(ids.length, 1, "catchUp latest: the last tick by the server's clock");
  const task = await storage.fetchById(ids[0]!);
  const tick = (task!.meta.cron as { tick: number }).tick;
  assert.ok(tick > Date.now() + DAY - HOUR - 60_000 && tick <= Date.now() + DAY, String(tick));
  assert.ok(task!.createdAt >= tick, "created at the server's time");
  const [after] = await storage.listSchedules();
  assert.equal(after!.nextTick, tick + HOUR);
});
