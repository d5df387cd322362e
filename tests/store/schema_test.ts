import assert from "node:assert/strict";
import {
  openDatabase,
  SCHEMA_VERSION,
  SchemaVersionError,
  SqliteStorage,
  Task,
} from "../../mod.ts";
import { CLAIM_SQL } from "../../lib/store/tasks.ts";
import { tempDatabase } from "../_helpers.ts";

function tableNames(db: { all<T>(sql: string): T[] }): string[] {
  return db.all<{ name: string }>(
    "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name",
  ).map((row) => row.name);
}

Deno.test("SqliteStorage.setup() creates the tables and is idempotent when run twice", async () => {
  const dir = await Deno.makeTempDir({ prefix: "apalis_schema_" });
  const path = `${dir}/queue.db`;
  try {
    const db = openDatabase(path);
    try {
      assert.deepEqual(tableNames(db), []);
      assert.equal(SqliteStorage.setup(db), SCHEMA_VERSION);
      const tables = tableNames(db);
      for (const table of ["apalis_schema", "apalis_tasks", "apalis_workers"]) {
        assert.ok(tables.includes(table), `missing table ${table} in ${tables}`);
      }
      const id = await new SqliteStorage<string>(db, "q").push("kept");

      assert.equal(SqliteStorage.setup(db), SCHEMA_VERSION);
      assert.deepEqual(tableNames(db), tables);
      assert.deepEqual(
        db.all<{ version: number }>("SELECT version FROM apalis_schema").map((r) => r.version),
        [SCHEMA_VERSION],
      );
      assert.equal((await new SqliteStorage<string>(db, "q").fetchById(id))?.args, "kept");
    } finally {
      db.close();
    }
    // Another connection (as another process would) finds it set up.
    const again = openDatabase(path);
    try {
      assert.equal(SqliteStorage.setup(again), SCHEMA_VERSION);
      assert.equal(again.get<{ n: number }>("SELECT count(*) AS n FROM apalis_tasks")?.n, 1);
    } finally {
      again.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SqliteStorage.setup() throws SchemaVersionError naming both versions when the schema is newer", async () => {
  await using tmp = await tempDatabase();
  const newer = SCHEMA_VERSION + 1;
  tmp.db.run("UPDATE apalis_schema SET version = ?", [newer]);
  const check = (error: unknown) => {
    assert.ok(error instanceof SchemaVersionError, `expected SchemaVersionError, got ${error}`);
    assert.equal(error.name, "SchemaVersionError");
    assert.ok(error.message.includes(tmp.path), error.message);
    const words = error.message.replace(tmp.path, "");
    assert.match(words, new RegExp(`\\b${newer}\\b`), "names the version found");
    assert.match(words, new RegExp(`\\b${SCHEMA_VERSION}\\b`), "names the supported version");
    return true;
  };
  assert.throws(() => SqliteStorage.setup(tmp.db), check);
  // The refusal changes nothing.
  assert.equal(
    tmp.db.get<{ version: number }>("SELECT version FROM apalis_schema")?.version,
    newer,
  );

  // A fresh connection to that file is refused too.
  const other = openDatabase(tmp.path);
  try {
    assert.throws(() => SqliteStorage.setup(other), check);
  } finally {
    other.close();
  }
});

Deno.test("CLAIM_SQL uses the apalis_tasks_claim index when its plan is explained", async () => {
  await using tmp = await tempDatabase();
  // Some rows in several queues and states, so the plan is not for an empty table.
  const storage = new SqliteStorage<number>(tmp.db, "q");
  await storage.pushAll(
    Array.from({ length: 50 }, (_, i) => new Task(i, { priority: i % 3 })),
  );
  await storage.forQueue<number>("other").push(1);
  const plan = tmp.db.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${CLAIM_SQL}`, [
    "worker-1",
    Date.now(),
    "q",
    Date.now(),
    10,
  ]).map((row) => row.detail);
  const text = plan.join("\n");
  assert.ok(text.includes("apalis_tasks_claim"), `plan does not use the claim index:\n${text}`);
  for (const detail of plan) {
    assert.doesNotMatch(
      detail,
      /^SCAN apalis_tasks\b(?!.*USING (COVERING )?INDEX)/,
      `full table scan in plan:\n${text}`,
    );
  }
  assert.doesNotMatch(text, /TEMP B-TREE/, `the claim order needs a sort:\n${text}`);
});
