/**
 * `apalis metrics`: the Prometheus text (or `--json`) of a SQLite file and of a `postgres://`
 * URL, reading only.
 *
 * @module
 */
import assert from "node:assert/strict";
import { SqliteStorage } from "../../mod.ts";
import { PostgresStorage } from "../../postgres.ts";
import { captureIo, main } from "../../lib/cli/mod.ts";
import { tempDatabase } from "../_helpers.ts";
import { pgTest, tempPostgres } from "../_postgres.ts";
import { cli, fingerprint } from "./_postgres_cli.ts";

async function run(path: string, args: string[]) {
  const io = captureIo({ env: { APALIS_DB: path } });
  const code = await main(args, io);
  return { code, out: io.out, err: io.err };
}

Deno.test("apalis metrics prints the Prometheus text, or the snapshot with --json", async () => {
  await using temp = await tempDatabase();
  const email = new SqliteStorage(temp.db, 'e"mail');
  await email.push({ to: "a@b.c" });
  await email.kill(await email.push({ to: "d@e.f" }));
  const text = await run(temp.path, ["metrics"]);
  assert.equal(text.err, "");
  assert.equal(text.code, 0);
  assert.match(text.out, /^# TYPE apalis_tasks gauge$/m);
  assert.match(text.out, /^apalis_tasks\{queue="e\\"mail",state="pending"\} 1$/m);
  assert.match(text.out, /^apalis_tasks_killed_total\{queue="e\\"mail"\} 1$/m);

  const json = await run(temp.path, ["metrics", "--json"]);
  assert.equal(json.code, 0, json.err);
  const snapshot = JSON.parse(json.out);
  assert.equal(snapshot.sample, 1000);
  assert.deepEqual(snapshot.queues.map((q: { queue: string }) => q.queue), ['e"mail']);
  assert.deepEqual(snapshot.queues[0].outcomes, { done: 0, failed: 0, killed: 1 });

  const extra = await run(temp.path, ["metrics", "email"]);
  assert.equal(extra.code, 2);
  assert.equal(extra.out, "");
  assert.match(extra.err, /^apalis metrics: /);
});

pgTest("apalis metrics on a postgres:// URL prints the text and writes nothing", async () => {
  await using db = await tempPostgres();
  const admin = PostgresStorage.admin(db.pg);
  await new PostgresStorage(db.pg, "email").push({ to: "a@b.c" });
  await admin.pauseQueue("email");
  const before = await fingerprint(db.pg);
  const { code, out, err } = await cli(db.url, ["metrics"]);
  assert.equal(err, "");
  assert.equal(code, 0);
  assert.match(out, /^apalis_tasks\{queue="email",state="pending"\} 1$/m);
  assert.match(out, /^apalis_queue_paused\{queue="email"\} 1$/m);
  assert.equal(await fingerprint(db.pg), before, "read only");
});
