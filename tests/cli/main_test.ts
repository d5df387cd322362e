import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { openDatabase, SqliteStorage } from "../../mod.ts";
import { captureIo, main, VERSION } from "../../lib/cli/mod.ts";
import { tempDatabase } from "../_helpers.ts";

async function run(args: string[], env: Record<string, string> = {}) {
  const io = captureIo({ env });
  const code = await main(args, io);
  return { code, out: io.out, err: io.err };
}

const MINE = [
  "init",
  "push",
  "ls",
  "show",
  "stats",
  "metrics",
  "queues",
  "workers",
  "retry",
  "kill",
  "vacuum",
  "version",
];

Deno.test("main() prints the program help with --help, and on stderr with exit 2 without a command", async () => {
  const help = await run(["--help"]);
  assert.equal(help.code, 0);
  assert.equal(help.err, "");
  assert.match(help.out, /^apalis \d+\.\d+\.\d+: /);
  for (const name of MINE) {
    assert.match(help.out, new RegExp(`\n  ${name} +[a-z]`), `${name} has a summary`);
  }
  const none = await run([]);
  assert.equal(none.code, 2);
  assert.equal(none.out, "");
  assert.equal(none.err, help.out);
});

Deno.test("main() prints each command's help with --help, wherever it stands", async () => {
  for (const name of MINE) {
    const { code, out } = await run([name, "--help"]);
    assert.equal(code, 0, name);
    assert.match(out, new RegExp(`^Usage: apalis ${name}\\b`), name);
    assert.match(out, /\nExamples?:\n {2}apalis /, `${name} has an example`);
    assert.equal((await run(["-h", name])).out, out);
  }
});

Deno.test("main() rejects an unknown command with exit 2", async () => {
  const { code, out, err } = await run(["frobnicate"]);
  assert.equal(code, 2);
  assert.equal(out, "");
  assert.equal(err, "apalis: unknown command 'frobnicate' (see 'apalis --help')\n");
});

Deno.test("main() rejects an unknown option of a command with exit 2, pointing to its help", async () => {
  const { code, err } = await run(["stats", "--bogus"]);
  assert.equal(code, 2);
  assert.match(err, /^apalis stats: Unknown option '--bogus'.*\(see 'apalis stats --help'\)\n$/);
});

Deno.test("main() rejects --db without a value with exit 2", async () => {
  for (const args of [["stats", "--db"], ["--db=", "stats"], ["--db", "", "stats"]]) {
    const { code, out, err } = await run(args);
    assert.equal(code, 2, args.join(" "));
    assert.equal(out, "");
    assert.equal(err, "apalis: option '--db' needs a path\n");
  }
});

Deno.test("main() uses --db before $APALIS_DB, and $APALIS_DB when --db is absent", async () => {
  await using a = await tempDatabase();
  await using b = await tempDatabase();
  await new SqliteStorage(a.db, "from-env").push(1);
  await new SqliteStorage(b.db, "from-flag").push(1);
  const env = { APALIS_DB: a.path };
  const fromEnv = await run(["queues", "--json"], env);
  assert.deepEqual(JSON.parse(fromEnv.out).map((q: { name: string }) => q.name), ["from-env"]);
  for (
    const args of [["--db", b.path, "queues", "--json"], ["queues", `--db=${b.path}`, "--json"]]
  ) {
    const fromFlag = await run(args, env);
    assert.deepEqual(JSON.parse(fromFlag.out).map((q: { name: string }) => q.name), ["from-flag"]);
  }
});

Deno.test("main() uses ./apalis.db when neither --db nor $APALIS_DB is given", async () => {
  await using temp = await tempDatabase();
  const cwd = Deno.cwd();
  Deno.chdir(temp.dir);
  try {
    const missing = await run(["stats"]);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /Cannot open database '\.\/apalis\.db': no such file/);
    assert.equal((await run(["init"])).code, 0);
    assert.ok(existsSync(`${temp.dir}/apalis.db`));
    assert.equal((await run(["stats"])).code, 0);
  } finally {
    Deno.chdir(cwd);
  }
});

Deno.test("main() exits 2 on a missing database for every read command, creating nothing", async () => {
  await using temp = await tempDatabase();
  const path = `${temp.dir}/missing.db`;
  const commands = [
    ["ls", "email"],
    ["show", "x"],
    ["stats"],
    ["stats", "--watch"],
    ["metrics"],
    ["queues"],
    ["workers"],
    ["retry", "x"],
    ["retry", "--queue", "q", "--status", "killed"],
    ["kill", "x"],
    ["vacuum"],
  ];
  for (const args of commands) {
    const { code, out, err } = await run(args, { APALIS_DB: path });
    assert.equal(code, 2, args.join(" "));
    assert.equal(out, "");
    assert.equal(
      err,
      `apalis ${
        args[0]
      }: Cannot open database '${path}': no such file (create it with 'apalis init', or pass --db)\n`,
    );
    assert.ok(!existsSync(path), `${args.join(" ")} created the file`);
  }
});

Deno.test("main() exits 2 on a database without apalis tables for read commands", async () => {
  await using temp = await tempDatabase();
  const path = `${temp.dir}/other.db`;
  const db = openDatabase(path);
  db.exec("CREATE TABLE users (email TEXT)");
  db.close();
  for (const args of [["stats"], ["ls", "q"], ["vacuum"]]) {
    const { code, err } = await run(args, { APALIS_DB: path });
    assert.equal(code, 2);
    assert.match(err, /it has no apalis tables \(run 'apalis init' first\)/);
  }
  const check = openDatabase(path);
  try {
    assert.equal(
      check.get("SELECT name FROM sqlite_schema WHERE name = 'apalis_tasks'"),
      undefined,
    );
  } finally {
    check.close();
  }
});

Deno.test("versionCommand.run() prints the versions of apalis, the runtime and SQLite", async () => {
  const text = await run(["version"], { APALIS_DB: "/nonexistent/apalis.db" });
  assert.equal(text.code, 0);
  assert.equal(text.err, "");
  assert.match(
    text.out,
    new RegExp(`^apalis ${VERSION} \\(deno ${Deno.version.deno}, sqlite 3\\.\\d+\\.\\d+\\)\n$`),
  );
  const json = await run(["version", "--json"]);
  const info = JSON.parse(json.out);
  assert.deepEqual(info.runtime, { name: "deno", version: Deno.version.deno });
  assert.equal(info.version, VERSION);
  assert.match(info.sqlite, /^3\.\d+\.\d+$/);
  assert.ok(text.out.includes(`sqlite ${info.sqlite})`));
  assert.equal((await run(["version", "extra"])).code, 2);
});

Deno.test("main() prints the version with --version and -V, as 'apalis version' does", async () => {
  const version = await run(["version"]);
  const versionJson = await run(["version", "--json"]);
  for (const flag of ["--version", "-V"]) {
    assert.deepEqual(await run([flag]), version, flag);
    assert.deepEqual(await run([flag, "--json"]), versionJson, `${flag} --json`);
    assert.deepEqual(await run(["--json", flag]), versionJson, `--json ${flag}`);
    const extra = await run([flag, "extra"]);
    assert.equal(extra.code, 2);
    assert.match(extra.err, /unexpected argument 'extra'/);
  }
  const help = await run(["--help"]);
  assert.match(help.out, /\n {2}-V, --version +print the version/);
});
