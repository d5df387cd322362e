/**
 * The CLI on PostgreSQL URLs that cannot work: a malformed URL or another scheme (exit 2, before
 * any connection), a server that is down, a database that does not exist, a wrong password
 * (exit 1): one line on stderr naming the server, never its password, and nothing created.
 *
 * @module
 */
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster, pgTest, sharedCluster } from "../_postgres.ts";
import { cli } from "./_postgres_cli.ts";
import { POSTGRES_SCHEMA_VERSION } from "../../postgres.ts";

/** Commands of each kind of access: read, read-then-write, write, create, setup. */
const COMMANDS = [
  ["stats"],
  ["ls", "--json"],
  ["board", "--port", "0"],
  ["retry", "T"],
  ["work", "q", "--exec", "true"],
  ["push", "q", "1"],
  ["init"],
];

Deno.test("a malformed postgres:// URL, or a URL of another database, exits 2 before connecting, naming what is wrong without the password", async () => {
  const cwd = Deno.cwd();
  const cases: [string, string][] = [
    [
      "postgres://app:pw-secret@db.internal:99999/app",
      "Cannot use database 'postgres://app:***@db.internal:99999/app': 'db.internal:99999' is not a host name with an optional port from 1 to 65535",
    ],
    [
      "postgres://app:pw-secret@db internal/app",
      "Cannot use database 'postgres://app:***@db internal/app': 'db internal' is not a host name with an optional port from 1 to 65535",
    ],
    [
      "postgresql://app@db1:5432,db2:x/app",
      "Cannot use database 'postgresql://app@db1:5432,db2:x/app': 'db2:x' is not a host name with an optional port from 1 to 65535",
    ],
    [
      "mysql://app:pw-secret@db.internal/app",
      "Cannot use database 'mysql://app:***@db.internal/app': mysql:// URLs are not supported (give a SQLite file path, or a postgres:// or postgresql:// URL)",
    ],
    [
      "POSTGRES://app@db.internal/app",
      "Cannot use database 'POSTGRES://app@db.internal/app': write the scheme in lower case (postgres://)",
    ],
  ];
  for (const [url, message] of cases) {
    for (const args of COMMANDS) {
      const run = await cli(url, args);
      assert.deepEqual(
        run,
        { code: 2, out: "", err: `apalis ${args[0]}: ${message}\n` },
        `${url} ${args[0]}`,
      );
    }
  }
  // Not taken for a file path: nothing was created under the current directory.
  for (const name of ["mysql:", "POSTGRES:", "postgres:", "postgresql:"]) {
    assert.ok(!existsSync(join(cwd, name)), name);
  }
});

pgTest(
  "a server that is down, or a database that does not exist, exits 1 with one line naming the server without the password",
  async () => {
    const cluster = await sharedCluster();
    const port = await unusedPort();
    const down = `postgres://app:pw-secret@127.0.0.1:${port}/app`;
    for (const args of COMMANDS) {
      const run = await cli(down, args);
      assert.deepEqual(run, {
        code: 1,
        out: "",
        err: `apalis ${
          args[0]
        }: Cannot connect on PostgreSQL at postgres://app:***@127.0.0.1:${port}/app: connect ECONNREFUSED 127.0.0.1:${port}\n`,
      }, args.join(" "));
    }
    const missing = cluster.url("no_such_db").replace("://postgres@", "://postgres:pw-secret@");
    for (const args of COMMANDS) {
      const run = await cli(missing, args);
      assert.deepEqual(run, {
        code: 1,
        out: "",
        err: `apalis ${
          args[0]
        }: Cannot connect on PostgreSQL at postgres://postgres:***@127.0.0.1:${cluster.port}/no_such_db: database "no_such_db" does not exist (3D000)\n`,
      }, args.join(" "));
    }
    const version = await cli(down, ["version"]);
    assert.equal(version.code, 1);
    assert.match(version.out, /^apalis \d+\.\d+\.\d+ \(\w+ [\d.]+, sqlite [\d.]+\)\n$/);
    assert.match(version.err, /^apalis version: Cannot connect on PostgreSQL at .*ECONNREFUSED/);
    assert.ok(!version.err.includes("pw-secret"));
  },
);

pgTest(
  "a wrong password exits 1 with the server's reason and without the password; the right one works",
  async () => {
    // A cluster of its own that asks role 'app' for a password (the shared one trusts everyone).
    const hbaDir = mkdtempSync(join(tmpdir(), "apalis_hba_"));
    chmodSync(hbaDir, 0o755);
    const hba = join(hbaDir, "pg_hba.conf");
    writeFileSync(
      hba,
      "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n",
    );
    chmodSync(hba, 0o644);
    const cluster = await Cluster.start({ durable: false, settings: { hba_file: hba } });
    try {
      await cluster.psql("CREATE ROLE app LOGIN PASSWORD 'right-pw'");
      await cluster.psql("CREATE DATABASE app OWNER app");
      const url = (password: string) => `postgres://app:${password}@127.0.0.1:${cluster.port}/app`;
      for (const args of COMMANDS) {
        const run = await cli(url("wrong-pw"), args);
        assert.deepEqual(run, {
          code: 1,
          out: "",
          err: `apalis ${
            args[0]
          }: Cannot connect on PostgreSQL at postgres://app:***@127.0.0.1:${cluster.port}/app: password authentication failed for user "app" (28P01)\n`,
        }, args.join(" "));
      }
      const init = await cli(url("right-pw"), ["init"]);
      assert.deepEqual(init, {
        code: 0,
        out:
          `Initialized postgres://app:***@127.0.0.1:${cluster.port}/app (schema version ${POSTGRES_SCHEMA_VERSION})\n`,
        err: "",
      });
      assert.deepEqual(await cli(url("right-pw"), ["stats"]), {
        code: 0,
        out: "No queues yet.\n",
        err: "",
      });
    } finally {
      cluster.destroySync();
      rmSync(hbaDir, { recursive: true, force: true });
    }
  },
);

/** A TCP port on 127.0.0.1 that nothing listens on. */
function unusedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}
