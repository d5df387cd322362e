import assert from "node:assert/strict";
import {
  openDatabase,
  SCHEMA_VERSION,
  SchemaVersionError,
  SqliteStorage,
  Task,
} from "../../mod.ts";
import { migrate } from "../../lib/store/schema.ts";
import { CLAIM_AHEAD_SQL, CLAIM_SQL, IS_FINISHED, RELEASE_SQL } from "../../lib/store/tasks.ts";
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

Deno.test("SqliteStorage.setup() upgrades a version 3 file: tasks and counted outcomes kept, outcomes counted without the trigger", async () => {
  await using tmp = await tempDatabase({ setup: false });
  const { db } = tmp;
  assert.equal(migrate(db, 3), 3);
  const at = Date.UTC(2026, 0, 1, 12, 0, 0);
  db.run(
    `INSERT INTO apalis_tasks (id, queue, status, args, run_at, created_at, lock_by, attempts)
     VALUES ('old-1', 'q', 'running', X'31', ?1, ?1, 'w', 1), ('old-2', 'q', 'pending', X'32', ?1, ?1, NULL, 0)`,
    [at],
  );
  db.run("UPDATE apalis_tasks SET status = 'done', done_at = ? WHERE id = 'old-1'", [at]);
  assert.equal(SqliteStorage.setup(db), SCHEMA_VERSION);
  const names = db.all<{ name: string }>(
    "SELECT name FROM sqlite_schema WHERE name LIKE 'apalis_%' ORDER BY name",
  ).map((row) => row.name);
  assert.ok(!names.includes("apalis_count_outcome"), "the per-row trigger is gone");
  assert.ok(!names.includes("apalis_tasks_locked"));
  assert.ok(names.includes("apalis_tasks_held"));
  const storage = new SqliteStorage<number>(db, "q");
  assert.deepEqual(await storage.stats("q"), {
    pending: 1,
    queued: 0,
    running: 0,
    done: 1,
    failed: 0,
    killed: 0,
    total: 2,
  });
  await storage.kill("old-2");
  const minutes = await storage.throughput({ minutes: 60 * 24 * 365 * 10 });
  assert.deepEqual(minutes[0], { queue: "q", minute: at, done: 1, failed: 0, killed: 0 });
  assert.equal(minutes.reduce((sum, point) => sum + point.killed, 0), 1, "kill() counted once");
});

Deno.test("SqliteStorage.setup() upgrades a version 4 file to a rowid table, keeping every column of every task, the indexes and the workflow trigger", async () => {
  await using tmp = await tempDatabase({ setup: false });
  const { db } = tmp;
  assert.equal(migrate(db, 4), 4);
  const at = Date.UTC(2026, 0, 1, 12, 0, 0);
  const statuses = ["pending", "queued", "running", "done", "failed", "killed"];
  for (const [i, status] of statuses.entries()) {
    db.run(
      `INSERT INTO apalis_tasks (id, queue, status, args, attempts, max_attempts, priority, run_at,
         created_at, lock_by, lock_at, done_at, last_result, last_error, meta, backoff, run_id,
         step, run_seq)
       VALUES (?, 'q', ?, ?, ?, 7, ?, ?, ?, ?, ?, ?, ?, ?, '{"m":1}', '{"kind":"fixed"}', ?, ?, ?)`,
      [
        `task-${i}`,
        status,
        new Uint8Array([i, 255]),
        i,
        i - 2,
        at + i,
        at - i,
        i % 3 === 0 ? null : `w${i}`,
        at + 10 * i,
        status === "done" || status === "killed" ? at + 100 * i : null,
        status === "done" ? new Uint8Array([9, i]) : null,
        status === "failed" ? '{"message":"boom"}' : null,
        i < 3 ? "run-1" : null,
        i < 3 ? `{"index":${i}}` : null,
        i < 3 ? i + 1 : null,
      ],
    );
  }
  const all = "SELECT * FROM apalis_tasks ORDER BY id";
  const before = db.all(all);

  assert.equal(SqliteStorage.setup(db), SCHEMA_VERSION);
  // Later migrations add columns (unique_key, group_key, progress…): empty for every old task.
  // (A statement of its own: one prepared before the migration may keep its old columns.)
  const after = db.all<Record<string, unknown>>(`${all} `);
  const kept = Object.keys(before[0]!);
  for (const row of after) {
    for (const [column, value] of Object.entries(row)) {
      if (!kept.includes(column)) assert.equal(value, null, `${column} of ${row.id}`);
    }
  }
  assert.deepEqual(
    after.map((row) => Object.fromEntries(kept.map((column) => [column, row[column]]))),
    before.map((row) => ({ ...row })),
    "every column of every task is kept",
  );
  const table = db.get<{ sql: string }>(
    "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'apalis_tasks'",
  )!.sql;
  assert.doesNotMatch(table, /WITHOUT ROWID/);
  assert.ok(db.get("SELECT rowid FROM apalis_tasks LIMIT 1"), "a rowid table");
  const objects = db.all<{ type: string; name: string }>(
    `SELECT type, name FROM sqlite_schema WHERE tbl_name = 'apalis_tasks' AND name NOT LIKE 'sqlite_%'
     ORDER BY name`,
  ).map((row) => `${row.type} ${row.name}`);
  assert.deepEqual(objects, [
    "trigger apalis_run_step",
    "trigger apalis_task_logs_delete",
    "table apalis_tasks",
    "index apalis_tasks_claim",
    "index apalis_tasks_finished",
    "index apalis_tasks_held",
    "index apalis_tasks_run",
    "trigger apalis_unique_release",
  ]);
  assert.equal(
    db.all("SELECT name FROM sqlite_schema WHERE name LIKE 'apalis_tasks_v%'").length,
    0,
  );
  assert.deepEqual(await new SqliteStorage<number>(db, "q").stats("q"), {
    pending: 1,
    queued: 1,
    running: 1,
    done: 1,
    failed: 1,
    killed: 1,
    total: 6,
  });
  // The ids stay unique and the statuses checked.
  assert.throws(() =>
    db.run(
      "INSERT INTO apalis_tasks (id, queue, args, run_at, created_at) VALUES ('task-0', 'q', X'00', 0, 0)",
    ), /UNIQUE/);
  assert.throws(() =>
    db.run(
      "INSERT INTO apalis_tasks (id, queue, status, args, run_at, created_at) VALUES ('x', 'q', 'lost', X'00', 0, 0)",
    ), /CHECK/);
  assert.throws(
    () =>
      db.run(
        "INSERT INTO apalis_tasks (queue, args, run_at, created_at) VALUES ('q', X'00', 0, 0)",
      ),
    /NOT NULL/,
  );
});

Deno.test("IS_FINISHED lets SQLite read finished tasks from the apalis_tasks_finished index", async () => {
  await using tmp = await tempDatabase();
  await new SqliteStorage<number>(tmp.db, "q").pushAll(
    Array.from({ length: 50 }, (_, i) => new Task(i)),
  );
  for (
    const sql of [
      `SELECT count(*) FROM apalis_tasks WHERE ${IS_FINISHED} AND queue = ? AND status = ?`,
      `SELECT * FROM apalis_tasks WHERE ${IS_FINISHED} AND queue = ? AND status = ? ORDER BY id DESC`,
    ]
  ) {
    const plan = tmp.db.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, ["q", "done"])
      .map((row) => row.detail).join("\n");
    assert.match(plan, /apalis_tasks_finished \(queue=\? AND status=\?\)/, `plan:\n${plan}`);
    assert.doesNotMatch(plan, /TEMP B-TREE/, `plan:\n${plan}`);
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

for (
  const [name, sql, window] of [
    ["CLAIM_SQL", CLAIM_SQL, []],
    ["CLAIM_AHEAD_SQL", CLAIM_AHEAD_SQL, [40]],
  ] as const
) {
  Deno.test(`${name} uses the apalis_tasks_claim index when its plan is explained`, async () => {
    await using tmp = await tempDatabase();
    // Some rows in several queues and states, so the plan is not for an empty table.
    const storage = new SqliteStorage<number>(tmp.db, "q");
    await storage.pushAll(
      Array.from({ length: 50 }, (_, i) => new Task(i, { priority: i % 3 })),
    );
    await storage.forQueue<number>("other").push(1);
    const plan = tmp.db.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, [
      "q",
      2,
      Date.now(),
      ...window,
      10,
    ]).map((row) => row.detail);
    const text = plan.join("\n");
    assert.ok(text.includes("apalis_tasks_claim"), `plan does not use the claim index:\n${text}`);
    // A range per priority: the scan stops at the first task not yet due.
    assert.match(text, /apalis_tasks_claim \(queue=\? AND priority=\? AND run_at<\?\)/);
    assert.doesNotMatch(text, /TEMP B-TREE/, "the index gives the claim order");
    for (const detail of plan) {
      assert.doesNotMatch(
        detail,
        /^SCAN apalis_tasks\b(?!.*USING (COVERING )?INDEX)/,
        `full table scan in plan:\n${text}`,
      );
    }
    assert.doesNotMatch(text, /TEMP B-TREE/, `the claim order needs a sort:\n${text}`);
  });
}

Deno.test("RELEASE_SQL finds a worker's buffered tasks through the held-tasks index", async () => {
  await using tmp = await tempDatabase();
  await new SqliteStorage<number>(tmp.db, "q").pushAll(
    Array.from({ length: 50 }, (_, i) => new Task(i)),
  );
  const plan = tmp.db.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${RELEASE_SQL}`, ["w"])
    .map((row) => row.detail).join("\n");
  assert.match(plan, /apalis_tasks_held \(lock_by=\?\)/, `plan:\n${plan}`);
});
