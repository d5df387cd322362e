import assert from "node:assert/strict";
import { SchemaVersionError } from "../../mod.ts";
import { connectPostgres, POSTGRES_SCHEMA_VERSION, PostgresStorage } from "../../postgres.ts";
import { pgTest, tempPostgres } from "../_postgres.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const SETUP = new URL("./_pg_setup_process.ts", import.meta.url).pathname;

const TABLES = [
  "apalis_join_parts",
  "apalis_joins",
  "apalis_leases",
  "apalis_outcome_totals",
  "apalis_queues",
  "apalis_runs",
  "apalis_schedules",
  "apalis_schema",
  "apalis_task_logs",
  "apalis_tasks",
  "apalis_throughput",
  "apalis_unique",
  "apalis_workers",
];

pgTest("PostgresStorage.setup creates the tables once and is idempotent", async () => {
  await using db = await tempPostgres({ setup: false });
  assert.equal(await PostgresStorage.setup(db.pg), POSTGRES_SCHEMA_VERSION);
  assert.equal(await PostgresStorage.setup(db.pg), POSTGRES_SCHEMA_VERSION);
  const tables = await db.pg.sql<{ name: string }[]>`
    SELECT tablename AS name FROM pg_tables WHERE tablename LIKE 'apalis_%' ORDER BY 1`;
  assert.deepEqual(tables.map((t) => t.name), TABLES);
  const [row] = await db.pg.sql<{ n: number }[]>`SELECT count(*) AS n FROM apalis_schema`;
  assert.equal(row!.n, 1);
});

pgTest(
  "10 processes running PostgresStorage.setup at the same moment all succeed, and the schema is made once",
  async () => {
    await using db = await tempPostgres({ setup: false });
    const at = Date.now() + 1500; // every process is connected by then
    const children = Array.from({ length: 10 }, () =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", SETUP, "--url", db.url, "--at", String(at)],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output());
    const outputs = await Promise.all(children);
    for (const [i, out] of outputs.entries()) {
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, `process ${i}: ${stderr}`);
      assert.equal(new TextDecoder().decode(out.stdout).trim(), String(POSTGRES_SCHEMA_VERSION));
    }
    const [row] = await db.pg.sql<{ n: number; version: number }[]>`
    SELECT count(*) AS n, max(version) AS version FROM apalis_schema`;
    assert.deepEqual({ ...row }, { n: 1, version: POSTGRES_SCHEMA_VERSION });
    const [triggers] = await db.pg.sql<{ n: number }[]>`
    SELECT count(*) AS n FROM pg_trigger WHERE tgname = 'apalis_run_step'`;
    assert.equal(triggers!.n, 1);
  },
);

pgTest("PostgresStorage.setup refuses a database written by a newer version", async () => {
  await using db = await tempPostgres();
  await db.pg.sql`UPDATE apalis_schema SET version = ${POSTGRES_SCHEMA_VERSION + 1}`;
  await assert.rejects(
    () => PostgresStorage.setup(db.pg),
    (error: unknown) =>
      error instanceof SchemaVersionError &&
      error.message.includes(`its schema version is ${POSTGRES_SCHEMA_VERSION + 1}`),
  );
});

pgTest(
  "connectPostgres rejects a server that does not answer, naming it without its password",
  async () => {
    await assert.rejects(
      () => connectPostgres("postgres://app:secret@127.0.0.1:1/app", { connectTimeoutSeconds: 2 }),
      (error: unknown) =>
        error instanceof Error && error.name === "PostgresOperationError" &&
        error.message.includes(
          "Cannot connect on PostgreSQL at postgres://app:***@127.0.0.1:1/app",
        ) &&
        !error.message.includes("secret"),
    );
    await assert.rejects(
      () => connectPostgres("mysql://x"),
      /must start with postgres:\/\/ or postgresql:\/\//,
    );
  },
);
