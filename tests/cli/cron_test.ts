/**
 * `apalis cron add|ls|rm` on a SQLite file and on a `postgres://` URL (in-process): the same
 * scenario on both, checked through the library; bad input exits 2 and writes nothing, a
 * missing schedule exits 1; `cron ls` on a file whose schema predates schedules lists none.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Admin, openDatabase, type ScheduleInfo, SqliteStorage } from "../../mod.ts";
import { PostgresStorage } from "../../postgres.ts";
import { captureIo, main } from "../../lib/cli/mod.ts";
import { migrate } from "../../lib/store/schema.ts";
import { tempDatabase } from "../_helpers.ts";
import { pgTest, tempPostgres } from "../_postgres.ts";

type Run = (args: string[]) => Promise<{ code: number; out: string; err: string }>;

function runner(db: string): Run {
  return async (args) => {
    const io = captureIo({ env: { APALIS_DB: db, PATH: Deno.env.get("PATH") } });
    const code = await main(args, io);
    return { code, out: io.out, err: io.err };
  };
}

async function scenario(run: Run, admin: Admin): Promise<void> {
  const added = await run([
    "cron",
    "add",
    "daily-digest",
    "0 8 * * *",
    "email",
    '{"kind":"digest"}',
    "--tz",
    "Europe/Paris",
    "--catch-up",
    "all",
    "--priority",
    "2",
  ]);
  assert.equal(added.err, "");
  assert.equal(added.code, 0);
  const [digest] = await admin.listSchedules();
  assert.equal(digest?.name, "daily-digest");
  assert.equal(digest.queue, "email");
  assert.equal(digest.timezone, "Europe/Paris");
  assert.equal(digest.catchUp, "all");
  assert.equal(digest.priority, 2);
  assert.deepEqual(digest.args, { kind: "digest" });
  assert.equal(new Date(digest.nextTick!).getUTCMinutes(), 0);
  assert.ok([6, 7].includes(new Date(digest.nextTick!).getUTCHours()), "8:00 in Paris");
  assert.equal(
    added.out,
    `Scheduled 'daily-digest' on queue 'email': "0 8 * * *" (Europe/Paris), next tick ${
      new Date(digest.nextTick!).toISOString()
    }\n`,
  );
  const seconds = await run(["cron", "add", "pings", "*/10 * * * * *", "pings", "--json"]);
  assert.equal(seconds.code, 0, seconds.err);
  const json: ScheduleInfo = JSON.parse(seconds.out);
  assert.equal(json.catchUp, "latest");
  assert.equal(json.args, null, "no JSON payload: null");
  assert.equal(json.upcoming.length, 3);

  const table = await run(["cron", "ls"]);
  assert.equal(table.code, 0, table.err);
  const lines = table.out.trim().split("\n");
  assert.match(lines[0]!, /^NAME +QUEUE +CRON +ZONE +NEXT TICK +LAST TICK +LAST TASK$/);
  assert.match(lines[1]!, /^daily-digest +email +0 8 \* \* \* +Europe\/Paris +\d{4}-.+Z +- +-$/);
  assert.match(lines[2]!, /^pings +pings +\*\/10 \* \* \* \* \* +UTC +/);
  const listed = await run(["cron", "ls", "pings", "--json"]);
  assert.deepEqual(
    (JSON.parse(listed.out) as ScheduleInfo[]).map((schedule) => schedule.name),
    ["pings"],
  );

  const before = JSON.stringify(await admin.listSchedules());
  const refusals: [string[], RegExp][] = [
    [["cron", "add", "x", "61 * * * *", "q"], /the cron expression "61 \* \* \* \*" is invalid/],
    [["cron", "add", "x", "* * * * *", "q", "--tz", "Nowhere/City"], /"Nowhere\/City" is not/],
    [["cron", "add", "x", "* * * * *", "q", "--catch-up", "most"], /'--catch-up' must be one/],
    [["cron", "add", "x", "* * * * *", "q", "{nope"], /the JSON payload is not valid JSON/],
    [["cron", "add", "x", "* * * * *"], /missing QUEUE/],
    [["cron", "remove", "x"], /unknown action 'remove'/],
  ];
  for (const [args, message] of refusals) {
    const refused = await run(args);
    assert.equal(refused.code, 2, `${args.join(" ")}: ${refused.err}`);
    assert.match(refused.err, message);
    assert.equal(refused.out, "");
  }
  const taken = await run(["cron", "add", "pings", "* * * * *", "other"]);
  assert.equal(taken.code, 1);
  assert.match(taken.err, /queue 'pings' has a schedule of that name/);
  assert.equal(JSON.stringify(await admin.listSchedules()), before, "nothing was written");

  const removed = await run(["cron", "rm", "pings"]);
  assert.deepEqual(removed, {
    code: 0,
    out: "Removed schedule 'pings' of queue 'pings'\n",
    err: "",
  });
  const again = await run(["cron", "rm", "pings"]);
  assert.deepEqual(again, { code: 1, out: "", err: "apalis cron: no schedule is named 'pings'\n" });
  assert.deepEqual((await admin.listSchedules()).map((s) => s.name), ["daily-digest"]);
  const help = await run(["cron", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.out, /^Usage: apalis cron add NAME "EXPR" QUEUE \[JSON\] \[options\]/);
}

Deno.test("apalis cron add, ls and rm on a SQLite file", async () => {
  await using temp = await tempDatabase();
  await scenario(runner(temp.path), SqliteStorage.admin(temp.db));
});

Deno.test("apalis cron ls on a file whose schema predates schedules lists none, writing nothing", async () => {
  await using temp = await tempDatabase({ setup: false });
  migrate(temp.db, 5);
  const run = runner(temp.path);
  assert.deepEqual(await run(["cron", "ls"]), { code: 0, out: "No schedules.\n", err: "" });
  assert.deepEqual(await run(["cron", "ls", "--json"]), { code: 0, out: "[]\n", err: "" });
  const reader = openDatabase(temp.path, { readOnly: true });
  try {
    assert.equal(SqliteStorage.schemaVersion(reader), 5, "not upgraded");
  } finally {
    reader.close();
  }
});

pgTest("apalis cron add, ls and rm on a postgres:// URL", async () => {
  await using db = await tempPostgres();
  await scenario(runner(db.url), PostgresStorage.admin(db.pg));
});
