import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { openDatabase, SCHEMA_VERSION, SqliteStorage } from "../../mod.ts";
import { captureIo, main } from "../../lib/cli/mod.ts";
import { tempDatabase } from "../_helpers.ts";

async function run(path: string, args: string[]) {
  const io = captureIo({ env: { APALIS_DB: path } });
  const code = await main(args, io);
  return { code, out: io.out, err: io.err };
}

Deno.test("initCommand.run() creates a missing database and prints its path and version", async () => {
  await using temp = await tempDatabase();
  const path = `${temp.dir}/fresh.db`;
  const { code, out, err } = await run(path, ["init"]);
  assert.equal(err, "");
  assert.equal(code, 0);
  assert.equal(out, `Initialized ${path} (schema version ${SCHEMA_VERSION})\n`);
  const db = openDatabase(path);
  try {
    assert.equal(
      db.get<{ version: number }>("SELECT version FROM apalis_schema")?.version,
      SCHEMA_VERSION,
    );
    assert.equal(await new SqliteStorage(db).stats().then((s) => s.total), 0);
  } finally {
    db.close();
  }
});

Deno.test("initCommand.run() keeps an existing database's tasks and prints JSON with --json", async () => {
  await using temp = await tempDatabase();
  const id = await new SqliteStorage(temp.db, "email").push({ to: "a" });
  const { code, out } = await run(temp.path, ["init", "--json"]);
  assert.equal(code, 0);
  assert.deepEqual(JSON.parse(out), { path: temp.path, schemaVersion: SCHEMA_VERSION });
  assert.equal((await new SqliteStorage(temp.db).fetchById(id))?.status, "pending");
});

Deno.test("initCommand.run() prints the absolute path of a relative --db", async () => {
  await using temp = await tempDatabase();
  const cwd = Deno.cwd();
  Deno.chdir(temp.dir);
  try {
    const { code, out } = await run("unused.db", ["--db", "rel.db", "init"]);
    assert.equal(code, 0);
    assert.equal(
      out,
      `Initialized ${Deno.realPathSync(temp.dir)}/rel.db (schema version ${SCHEMA_VERSION})\n`,
    );
  } finally {
    Deno.chdir(cwd);
  }
  assert.ok(existsSync(`${temp.dir}/rel.db`));
  assert.ok(!existsSync(`${temp.dir}/unused.db`));
});

Deno.test("initCommand.run() refuses a database from a newer version with exit 1", async () => {
  await using temp = await tempDatabase();
  temp.db.run("UPDATE apalis_schema SET version = 99");
  const { code, out, err } = await run(temp.path, ["init"]);
  assert.equal(code, 1);
  assert.equal(out, "");
  assert.match(err, /^apalis init: Cannot use database '.*': its schema version is 99/);
});

Deno.test("initCommand.run() rejects arguments with exit 2 and creates nothing", async () => {
  await using temp = await tempDatabase();
  const path = `${temp.dir}/fresh.db`;
  for (const args of [["init", "extra"], ["init", "--force"]]) {
    const { code, err } = await run(path, args);
    assert.equal(code, 2, args.join(" "));
    assert.match(err, /see 'apalis init --help'/);
  }
  assert.ok(!existsSync(path));
});
