/**
 * Every CLI command on a `postgres://` URL (in-process, against a private cluster): init, push,
 * ls, show, stats, queues, workers, retry, kill, vacuum and version; read-only commands write
 * nothing; a database without apalis tables, or with a newer schema, is refused.
 *
 * @module
 */
import assert from "node:assert/strict";
import { POSTGRES_SCHEMA_VERSION, PostgresStorage } from "../../postgres.ts";
import type { TaskRecord } from "../../mod.ts";
import { openForCommand } from "../../lib/cli/command.ts";
import { pgTest, tempPostgres } from "../_postgres.ts";
import { cli, fingerprint, tableNames, withPassword } from "./_postgres_cli.ts";

const NO_TABLES = (location: string) =>
  `Cannot use database '${location}': it has no apalis tables (run 'apalis init' first)\n`;

pgTest(
  "apalis init on a postgres:// URL sets up the tables, again safely, and prints the URL without its password",
  async () => {
    await using db = await tempPostgres({ setup: false });
    const url = withPassword(db.url);
    const location = url.replace(":s3cret-pw@", ":***@");
    const first = await cli(url, ["init"]);
    assert.deepEqual(first, {
      code: 0,
      out: `Initialized ${location} (schema version ${POSTGRES_SCHEMA_VERSION})\n`,
      err: "",
    });
    assert.equal(await PostgresStorage.schemaVersion(db.pg), POSTGRES_SCHEMA_VERSION);
    assert.ok((await tableNames(db.pg)).includes("apalis_tasks"));
    const again = await cli(url, ["init", "--json"]);
    assert.equal(again.code, 0, again.err);
    assert.deepEqual(JSON.parse(again.out), {
      path: location,
      schemaVersion: POSTGRES_SCHEMA_VERSION,
    });
    // The other spelling of the scheme, through --db rather than $APALIS_DB.
    const other = await cli("./unused.db", [
      "--db",
      db.url.replace("postgres://", "postgresql://"),
      "init",
    ]);
    assert.equal(other.code, 0, other.err);
    assert.match(other.out, /^Initialized postgresql:\/\/postgres@127\.0\.0\.1:\d+\/\w+ \(schema/);
  },
);

pgTest(
  "apalis push sets up a database without apalis tables, then ls, show, stats, queues and workers read what it wrote",
  async () => {
    await using db = await tempPostgres({ setup: false });
    const one = await cli(db.url, ["push", "email", '{"to":"ada@example.com"}', "--priority", "5"]);
    assert.equal(one.code, 0, one.err);
    const id = one.out.trim();
    assert.match(id, /^[0-9A-Z]{26}$/);
    assert.equal(await PostgresStorage.schemaVersion(db.pg), POSTGRES_SCHEMA_VERSION);
    const many = await cli(db.url, ["push", "email", "--file", "-", "--delay", "1h", "--json"], {
      stdin: '{"to":"b@example.com"}\n{"to":"c@example.com"}\n',
    });
    assert.equal(many.code, 0, many.err);
    assert.equal(JSON.parse(many.out).length, 2);
    await cli(db.url, ["push", "sms", '"hello"', "--id", "sms-1"]);

    const listed = await cli(db.url, ["ls", "email", "--json"]);
    assert.equal(listed.code, 0, listed.err);
    const tasks: TaskRecord[] = JSON.parse(listed.out);
    assert.deepEqual(tasks.map((task) => task.args).reverse(), [
      { to: "ada@example.com" },
      { to: "b@example.com" },
      { to: "c@example.com" },
    ]);
    const table = await cli(db.url, ["ls", "--limit", "2"]);
    assert.equal(table.code, 0, table.err);
    assert.match(table.out, /^ID +QUEUE +STATUS +ATTEMPTS +PRIORITY +RUN AT +LAST ERROR\n/);
    assert.equal(table.out.trim().split("\n").length, 3);
    assert.equal(
      table.err,
      "apalis ls: showing tasks 1-2 of 4; see more with --page 2, or all at once with --limit 4\n",
    );

    const shown = await cli(db.url, ["show", id]);
    assert.equal(shown.code, 0, shown.err);
    assert.match(shown.out, new RegExp(`^Task ${id}\n  queue +email\n  status +pending\n`));
    assert.match(shown.out, /priority +5\n/);
    assert.match(shown.out, /Payload:\n {2}\{\n {4}"to": "ada@example\.com"\n {2}\}/);
    const sms = JSON.parse((await cli(db.url, ["show", "sms-1", "--json"])).out);
    assert.equal(sms.args, "hello");

    const stats = await cli(db.url, ["stats", "--json"]);
    assert.equal(stats.code, 0, stats.err);
    const pending = (n: number) => ({
      pending: n,
      queued: 0,
      running: 0,
      done: 0,
      failed: 0,
      killed: 0,
      total: n,
    });
    assert.deepEqual(JSON.parse(stats.out), {
      queues: { email: pending(3), sms: pending(1) },
      total: pending(4),
    });
    const statsTable = await cli(db.url, ["stats", "email"]);
    assert.match(statsTable.out, /^QUEUE +PENDING .*\nemail +3 +0 +0 +0 +0 +0 +3\n$/);

    const queues = await cli(db.url, ["queues", "--json"]);
    assert.equal(queues.code, 0, queues.err);
    assert.deepEqual(
      JSON.parse(queues.out).map((
        q: { name: string; aliveWorkers: number },
      ) => [q.name, q.aliveWorkers]),
      [["email", 0], ["sms", 0]],
    );
    const queuesTable = await cli(db.url, ["queues"]);
    assert.match(queuesTable.out, /\nemail +3 +0 +0 +0 +0 +0 +3 +\S+ +0 +active +-\n/);
    assert.deepEqual(await cli(db.url, ["workers"]), { code: 0, out: "No workers.\n", err: "" });
    assert.deepEqual(await cli(db.url, ["workers", "--json"]), { code: 0, out: "[]\n", err: "" });

    const unknown = await cli(db.url, ["show", "NOPE"]);
    assert.deepEqual(unknown, {
      code: 2,
      out: "",
      err: "apalis show: Cannot find task 'NOPE': no task has this id\n",
    });
  },
);

pgTest(
  "apalis retry, kill and vacuum on a URL repair tasks, and refuse unknown ids with exit 2",
  async () => {
    await using db = await tempPostgres();
    const storage = new PostgresStorage<number>(db.pg, "jobs");
    const [a, b, c] = [await storage.push(1), await storage.push(2), await storage.push(3)];

    const killed = await cli(db.url, ["kill", a, "--reason", "customer cancelled"]);
    assert.deepEqual(killed, { code: 0, out: `Task ${a} is killed\n`, err: "" });
    const record = (await storage.fetchById(a))!;
    assert.equal(record.status, "killed");
    assert.equal(record.lastError?.message, "customer cancelled");
    const again = await cli(db.url, ["kill", a]);
    assert.equal(again.code, 1);
    assert.match(again.err, /^apalis kill: .*killed/);

    const retried = await cli(db.url, ["retry", a, "--json"]);
    assert.equal(retried.code, 0, retried.err);
    assert.equal(JSON.parse(retried.out).status, "pending");
    assert.equal((await storage.fetchById(a))!.status, "pending");

    assert.equal((await cli(db.url, ["kill", b])).code, 0);
    assert.equal((await cli(db.url, ["kill", c])).code, 0);
    assert.deepEqual(await cli(db.url, ["retry", "--queue", "jobs", "--status", "killed"]), {
      code: 0,
      out: "Retried 2 killed tasks in queue 'jobs'\n",
      err: "",
    });
    assert.deepEqual((await storage.stats()).pending, 3);

    for (const id of [a, b]) assert.equal((await cli(db.url, ["kill", id])).code, 0);
    assert.deepEqual(await cli(db.url, ["vacuum", "--older-than", "1h"]), {
      code: 0,
      out: "Deleted 0 finished tasks\n",
      err: "",
    });
    assert.deepEqual(await cli(db.url, ["vacuum", "--json"]), {
      code: 0,
      out: '{\n  "deleted": 2\n}\n',
      err: "",
    });
    assert.deepEqual(
      (await storage.listTasks()).map((task) => [task.id, task.status]),
      [[c, "pending"]],
    );

    for (const command of ["retry", "kill"]) {
      const unknown = await cli(db.url, [command, "NOPE"]);
      assert.equal(unknown.code, 2, command);
      assert.equal(
        unknown.err,
        `apalis ${command}: Cannot find task 'NOPE': no task has this id\n`,
      );
    }
  },
);

pgTest(
  "read-only commands on a URL write nothing: a database without apalis tables keeps none, one with tasks stays as it was",
  async () => {
    await using empty = await tempPostgres({ setup: false });
    await empty.pg.sql`CREATE TABLE app_users (id serial PRIMARY KEY, email text)`;
    await empty.pg.sql`INSERT INTO app_users (email) VALUES ('ada@example.com')`;
    const before = await fingerprint(empty.pg);
    const refused = [
      ["ls"],
      ["show", "T"],
      ["stats"],
      ["stats", "--watch"],
      ["queues"],
      ["workers"],
      ["board", "--port", "0"],
      ["retry", "T"],
      ["kill", "T"],
      ["vacuum"],
      ["work", "q", "--exec", "true"],
    ];
    for (const args of refused) {
      const run = await cli(empty.url, args);
      assert.deepEqual(
        run,
        { code: 2, out: "", err: `apalis ${args[0]}: ${NO_TABLES(empty.url)}` },
        args.join(" "),
      );
    }
    assert.equal(await fingerprint(empty.pg), before, "the database is as it was");
    assert.deepEqual(await tableNames(empty.pg), ["app_users"]);

    await using db = await tempPostgres();
    const storage = new PostgresStorage(db.pg, "email");
    const id = await storage.push({ to: "a@example.com" });
    await storage.push({ to: "b@example.com" }, { runAfter: 3_600_000 });
    await storage.kill(await storage.push({ to: "c@example.com" }));
    const full = await fingerprint(db.pg);
    for (
      const args of [
        ["ls"],
        ["ls", "email", "--status", "killed"],
        ["show", id],
        ["stats"],
        [
          "stats",
          "email",
          "--json",
        ],
        ["queues"],
        ["workers", "email"],
        ["version"],
      ]
    ) {
      const run = await cli(db.url, args);
      assert.equal(run.code, 0, `${args.join(" ")}: ${run.err}`);
    }
    assert.equal(await fingerprint(db.pg), full, "the read-only commands wrote nothing");
  },
);

pgTest(
  "the read-only commands' PostgreSQL session refuses writes (SQLSTATE 25006), as SQLite's read-only file does",
  async () => {
    await using db = await tempPostgres();
    const id = await new PostgresStorage(db.pg, "email").push({ to: "a@example.com" });
    const reader = await openForCommand({ db: db.url, json: false }, "read");
    try {
      assert.equal(reader.engine, "postgres");
      assert.equal((await reader.admin.fetchById(id))?.status, "pending");
      await assert.rejects(reader.admin.kill(id), (error: Error) => {
        assert.match(error.message, /read-only transaction/);
        assert.equal((error as { code?: string }).code, "25006");
        return true;
      });
    } finally {
      await reader.close();
    }
    assert.equal((await new PostgresStorage(db.pg, "email").fetchById(id))?.status, "pending");
  },
);

pgTest(
  "every command refuses a database whose schema is newer than this version's, and changes nothing",
  async () => {
    await using db = await tempPostgres();
    await db.pg.sql`UPDATE apalis_schema SET version = 99`;
    const before = await fingerprint(db.pg);
    const message = (command: string) =>
      `apalis ${command}: Cannot use database '${db.url}': its schema version is 99, but this version of apalis-sqlite supports up to ${POSTGRES_SCHEMA_VERSION}; upgrade the library\n`;
    for (
      const args of [["init"], ["push", "q", "1"], ["ls"], ["stats"], ["board", "--port", "0"], [
        "vacuum",
      ], ["work", "q", "--exec", "true"]]
    ) {
      const run = await cli(db.url, args);
      assert.equal(run.code, 1, args.join(" "));
      assert.equal(run.err, message(args[0]!), args.join(" "));
    }
    assert.equal(await fingerprint(db.pg), before);
  },
);

pgTest(
  "apalis version also prints the PostgreSQL server's version when --db is a URL",
  async () => {
    await using db = await tempPostgres({ setup: false });
    const text = await cli(db.url, ["version"]);
    assert.equal(text.code, 0, text.err);
    assert.match(
      text.out,
      /^apalis \d+\.\d+\.\d+ \(\w+ [\d.]+, sqlite [\d.]+, postgresql \d+\.\d+\)\n$/,
    );
    const json = JSON.parse((await cli(db.url, ["version", "--json"])).out);
    const [server] = await db.pg.sql<{ server_version: string }[]>`SHOW server_version`;
    assert.equal(json.postgresql, server!.server_version.split(" ")[0]);
    assert.deepEqual(await tableNames(db.pg), [], "version needs no apalis tables and makes none");
  },
);
