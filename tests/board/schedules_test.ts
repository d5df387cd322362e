/**
 * The board's schedules page and `/api/schedules`, on SQLite and PostgreSQL: each schedule with
 * its queue, expression, zone, next three ticks, last tick and a link to its last task; linked
 * from the navigation; names escaped.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Admin, type ScheduleInfo, SqliteStorage, type Storage } from "../../mod.ts";
import { createBoardHandler } from "../../board.ts";
import { PostgresStorage } from "../../postgres.ts";
import { migrate } from "../../lib/store/schema.ts";
import { FakeClock, tempDatabase } from "../_helpers.ts";
import { pgTest, tempPostgres } from "../_postgres.ts";

const EVIL = "<script>alert(1)</script>";
const T0 = Date.UTC(2026, 0, 1);
const MINUTE = 60_000;

async function check(
  clock: FakeClock,
  storage: (queue: string) => Storage<unknown>,
  admin: Admin,
): Promise<void> {
  const email = storage("email");
  await email.schedule("digest", "0 8 * * *", { kind: "digest" }, { timezone: "Europe/Paris" });
  await email.schedule("minutely", "* * * * *", null, { catchUp: "all" });
  await storage("other").schedule(`odd${EVIL}`, "*/5 * * * *", EVIL, { paused: true });
  clock.set(T0 + 2 * MINUTE);
  const lastTask = `cron:minutely:${T0 + 2 * MINUTE}`;
  const ids = await email.enqueueDueSchedules();
  assert.ok(ids.includes(lastTask), ids.join());
  const board = createBoardHandler(admin, { clock });

  const response = await board(new Request("http://localhost/schedules"));
  assert.equal(response.status, 200);
  const page = await response.text();
  assert.match(page, /<a href="\/schedules" class="here">Schedules<\/a>/, "in the navigation");
  const row = (name: string) => {
    const match = new RegExp(`<tr data-schedule="${name}">([\\s\\S]*?)</tr>`).exec(page);
    assert.ok(match, `a row for ${name}`);
    return match[1]!;
  };
  const digest = row("digest");
  assert.match(digest, /<a href="\/queues\/email">email<\/a>/);
  assert.match(digest, /0 8 \* \* \*/);
  assert.match(digest, /Europe\/Paris/);
  assert.equal(digest.match(/<time datetime="2026-01-0\dT07:00:00.000Z">/g)?.length, 3);
  const minutely = row("minutely");
  assert.match(
    minutely,
    new RegExp(`<a class="mono" href="/tasks/${encodeURIComponent(lastTask)}">${lastTask}</a>`),
  );
  assert.match(minutely, /<time datetime="2026-01-01T00:02:00.000Z">/, "the last tick");
  assert.match(minutely, /<time datetime="2026-01-01T00:03:00.000Z">/, "the next tick");
  const odd = row(`odd&lt;script&gt;alert\\(1\\)&lt;/script&gt;`);
  assert.match(odd, /class="badge s-paused">paused</);
  assert.doesNotMatch(page, /<script>alert/);

  const link = await board(new Request(`http://localhost/tasks/${encodeURIComponent(lastTask)}`));
  assert.equal(link.status, 200, "the last task's link leads to it");

  const api = await board(new Request("http://localhost/api/schedules"));
  assert.equal(api.status, 200);
  const listed: ScheduleInfo[] = await api.json();
  assert.deepEqual(listed.map((s) => [s.name, s.queue, s.upcoming.length, s.lastTaskId]), [
    ["digest", "email", 3, null],
    ["minutely", "email", 3, lastTask],
    [`odd${EVIL}`, "other", 0, null],
  ]);
}

Deno.test("the board's schedules page on SQLite", async () => {
  await using temp = await tempDatabase();
  const clock = new FakeClock(T0);
  await check(
    clock,
    (queue) => new SqliteStorage(temp.db, queue, { clock }),
    SqliteStorage.admin(temp.db, { clock }),
  );
});

Deno.test("the board's schedules page on a file whose schema predates schedules lists none", async () => {
  await using temp = await tempDatabase({ setup: false });
  migrate(temp.db, 5);
  const board = createBoardHandler(temp.db);
  const page = await (await board(new Request("http://localhost/schedules"))).text();
  assert.match(page, /No schedules\./);
  assert.deepEqual(await (await board(new Request("http://localhost/api/schedules"))).json(), []);
});

pgTest("the board's schedules page on PostgreSQL", async () => {
  await using db = await tempPostgres();
  const clock = new FakeClock(T0);
  await check(
    clock,
    (queue) => new PostgresStorage(db.pg, queue, { clock }),
    PostgresStorage.admin(db.pg, { clock }),
  );
});
