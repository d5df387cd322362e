/**
 * `apalis push --unique*`: a duplicate writes nothing and is reported as `existing` (text and
 * `--json`), on SQLite and PostgreSQL; bad unique flags exit 2 and write nothing. `apalis show`
 * and the board's task page show the task's unique key.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createBoardHandler } from "../../board.ts";
import { SqliteStorage } from "../../mod.ts";
import { PostgresStorage } from "../../postgres.ts";
import { captureIo, main } from "../../lib/cli/mod.ts";
import { tempDatabase } from "../_helpers.ts";
import { pgTest, tempPostgres } from "../_postgres.ts";
import { cli } from "./_postgres_cli.ts";

async function run(path: string, args: string[], options: { stdin?: string } = {}) {
  const io = captureIo({ env: { APALIS_DB: path }, ...options });
  const code = await main(args, io);
  return { code, out: io.out, err: io.err };
}

const LINE = /^([0-9A-Z]{26}) (inserted|existing)$/;

Deno.test("apalis push --unique-key reports 'inserted', then 'existing' with the earlier id, and writes one task", async () => {
  await using temp = await tempDatabase();
  const first = await run(temp.path, ["push", "digest", '{"customer":42}', "--unique-key", "d:42"]);
  assert.equal(first.err, "");
  assert.equal(first.code, 0);
  const [, id, what] = LINE.exec(first.out.trim()) ?? [];
  assert.equal(what, "inserted");
  const again = await run(temp.path, [
    "push",
    "digest",
    '{"customer":43}',
    "--unique-key",
    "d:42",
    "--json",
  ]);
  assert.equal(again.code, 0, again.err);
  assert.deepEqual(JSON.parse(again.out), [{ id, inserted: false }]);
  const text = await run(temp.path, ["push", "digest", "{}", "--unique-key=d:42"]);
  assert.equal(text.out, `${id} existing\n`);
  const storage = new SqliteStorage(temp.db);
  assert.equal((await storage.stats("digest")).total, 1);
  assert.deepEqual((await storage.fetchById(id!))?.uniqueKey, "d:42");

  // `apalis show` names the key.
  const shown = await run(temp.path, ["show", id!]);
  assert.match(shown.out, /^ {2}unique {5}d:42$/m);
  // The board's task page too.
  const board = createBoardHandler(temp.db);
  const page = await (await board(new Request(`http://localhost:8000/tasks/${id}`))).text();
  assert.match(page, /<dt>Unique key<\/dt>\s*<dd class="mono" data-field="unique-key">d:42<\/dd>/);
  const plain = (await run(temp.path, ["push", "digest", "{}"])).out.trim();
  const plainPage = await (await board(new Request(`http://localhost:8000/tasks/${plain}`))).text();
  assert.doesNotMatch(plainPage, /Unique key/);
});

Deno.test("apalis push --unique dedupes by payload, per line of a file; --unique-period lets a done task block", async () => {
  await using temp = await tempDatabase();
  const lines = ['{"n":1}', '{"n":2}', '{"n":1}', '{"n":3}', '{"n":2}'].join("\n") + "\n";
  const pushed = await run(temp.path, ["push", "q", "--file", "-", "--unique", "--json"], {
    stdin: lines,
  });
  assert.equal(pushed.code, 0, pushed.err);
  const results = JSON.parse(pushed.out) as { id: string; inserted: boolean }[];
  assert.deepEqual(results.map((r) => r.inserted), [true, true, false, true, false]);
  assert.equal(results[2]!.id, results[0]!.id);
  assert.equal(results[4]!.id, results[1]!.id);
  const storage = new SqliteStorage(temp.db);
  assert.equal((await storage.stats("q")).total, 3);

  // Done: no longer blocks by default; blocks within --unique-period (every state but killed).
  temp.db.run("UPDATE apalis_tasks SET status = 'done', done_at = created_at");
  const periodic = await run(temp.path, ["push", "q", '{"n":1}', "--unique-period", "1h"]);
  assert.equal(periodic.out, `${results[0]!.id} existing\n`);
  const unfinished = await run(temp.path, ["push", "q", '{"n":1}', "--unique"]);
  assert.match(unfinished.out.trim(), LINE);
  assert.ok(unfinished.out.endsWith(" inserted\n"), unfinished.out);
  // --unique-states: only a killed earlier task blocks, so the pending one does not.
  const states = await run(temp.path, [
    "push",
    "q",
    '{"n":1}',
    "--unique-states",
    "killed",
  ]);
  assert.ok(states.out.endsWith(" inserted\n"), states.out);
  assert.equal((await storage.stats("q")).total, 5);
});

Deno.test("apalis push refuses bad unique flags with exit 2 and writes nothing", async () => {
  await using temp = await tempDatabase();
  const bad: [string[], RegExp][] = [
    [["--unique-period", "0"], /option '--unique-period' must be longer than 0/],
    [["--unique-period=-5s"], /option .--unique-period. must be a duration/],
    [["--unique-period", "10"], /option '--unique-period' needs a unit/],
    [["--unique-key", ""], /option '--unique-key' must not be empty/],
    [["--unique-key", "args:sha256:00"], /reserved/],
    [["--unique-states", "pending,paused"], /option '--unique-states' takes states .*'paused'/],
  ];
  for (const [flags, pattern] of bad) {
    const { code, out, err } = await run(temp.path, ["push", "q", "{}", ...flags]);
    assert.equal(code, 2, `${flags.join(" ")}: ${err}`);
    assert.equal(out, "");
    assert.match(err, pattern);
  }
  assert.equal((await new SqliteStorage(temp.db).stats()).total, 0);
  const help = await run(temp.path, ["push", "--help"]);
  assert.match(help.out, /--unique-key K/);
  assert.match(help.out, /--unique-period DURATION/);
});

pgTest("apalis push --unique-key on a postgres:// URL: inserted, then existing", async () => {
  await using db = await tempPostgres();
  const first = await cli(db.url, ["push", "digest", "{}", "--unique-key", "k", "--json"]);
  assert.equal(first.code, 0, first.err);
  const [result] = JSON.parse(first.out) as { id: string; inserted: boolean }[];
  assert.equal(result?.inserted, true);
  const again = await cli(db.url, ["push", "digest", "{}", "--unique-key", "k"]);
  assert.equal(again.code, 0, again.err);
  assert.equal(again.out, `${result!.id} existing\n`);
  const storage = new PostgresStorage(db.pg, "digest");
  assert.equal((await storage.stats("digest")).total, 1);
  assert.equal((await storage.fetchById(result!.id))?.uniqueKey, "k");
});
