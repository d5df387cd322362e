import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  DatabaseBusyError,
  DatabaseOpenError,
  openDatabase,
  type OpenDatabaseOptions,
  SCHEMA_VERSION,
  SqliteStorage,
} from "../../mod.ts";
import { isBusyError, retryBusy } from "../../lib/sqlite/busy.ts";
import { tempDatabase } from "../_helpers.ts";

/** A second connection to the temp database's file, closed on dispose. */
function connect(path: string, options: OpenDatabaseOptions = {}) {
  const db = openDatabase(path, options);
  return Object.assign(db, { [Symbol.dispose]: () => db.close() });
}

Deno.test("retryBusy() succeeds without freezing the event loop when another connection holds the write lock", async () => {
  await using tmp = await tempDatabase();
  const a = tmp.db;
  a.exec("CREATE TABLE t (who TEXT)");
  using b = connect(tmp.path);

  a.exec("BEGIN IMMEDIATE");
  a.run("INSERT INTO t (who) VALUES ('a')");
  // Without retrying, the other connection sees the lock.
  assert.throws(() => b.run("INSERT INTO t (who) VALUES ('b')"), isBusyError);

  let ticks = 0;
  const interval = setInterval(() => ticks++, 10);
  let committed = false;
  let ticksAtCommit = -1;
  const release = setTimeout(() => {
    ticksAtCommit = ticks;
    a.exec("COMMIT");
    committed = true;
  }, 200);
  let attempts = 0;
  let committedAtSuccess: boolean | undefined;
  try {
    const changes = await retryBusy(b, () => {
      attempts++;
      const result = b.run("INSERT INTO t (who) VALUES ('b')").changes;
      committedAtSuccess = committed;
      return result;
    });
    assert.equal(changes, 1);
  } finally {
    clearInterval(interval);
    clearTimeout(release);
  }
  assert.equal(committedAtSuccess, true, "the write went through only after A committed");
  assert.ok(attempts > 1, `expected several attempts, got ${attempts}`);
  assert.ok(
    ticksAtCommit >= 3,
    `a 10 ms interval should keep firing while B waits; it fired ${ticksAtCommit} times`,
  );
  assert.deepEqual(a.all<{ who: string }>("SELECT who FROM t ORDER BY rowid").map((r) => r.who), [
    "a",
    "b",
  ]);
});

Deno.test("isBusyError() recognises the driver's lock error and nothing else", async () => {
  await using tmp = await tempDatabase();
  using b = connect(tmp.path);
  tmp.db.exec("BEGIN IMMEDIATE");
  let driverError: unknown;
  try {
    b.run("DELETE FROM apalis_tasks");
  } catch (error) {
    driverError = error;
  } finally {
    tmp.db.exec("ROLLBACK");
  }
  assert.ok(driverError instanceof Error, "the second connection should have seen a lock");
  assert.equal(isBusyError(driverError), true);

  let syntaxError: unknown;
  try {
    b.run("DELETE FROM no_such_table");
  } catch (error) {
    syntaxError = error;
  }
  assert.ok(syntaxError instanceof Error);
  assert.equal(isBusyError(syntaxError), false);
  assert.equal(isBusyError(new Error("something else")), false);
  assert.equal(isBusyError("database is locked"), false, "only errors count");
  assert.equal(isBusyError(undefined), false);
  assert.equal(isBusyError(Object.assign(new Error("x"), { errcode: 517 })), true);
  assert.equal(isBusyError(Object.assign(new Error("x"), { code: "SQLITE_BUSY" })), true);
});

Deno.test("retryBusy() rejects with DatabaseBusyError naming the path when the lock outlasts busyRetryMs", async () => {
  await using tmp = await tempDatabase();
  using b = connect(tmp.path, { busyRetryMs: 50 });
  assert.equal(b.busyRetryMs, 50);
  tmp.db.exec("BEGIN IMMEDIATE");
  let attempts = 0;
  try {
    await assert.rejects(
      retryBusy(b, () => {
        attempts++;
        return b.run("DELETE FROM apalis_tasks");
      }),
      (error: unknown) => {
        assert.ok(error instanceof DatabaseBusyError, `expected DatabaseBusyError, got ${error}`);
        assert.equal(error.name, "DatabaseBusyError");
        assert.ok(error.message.includes(tmp.path), error.message);
        assert.equal(isBusyError(error.cause), true, "the last busy error is the cause");
        return true;
      },
    );
    // A storage on that connection gives up the same way.
    const storage = new SqliteStorage<number>(b, "q");
    await assert.rejects(storage.push(1), DatabaseBusyError);
  } finally {
    tmp.db.exec("ROLLBACK");
  }
  assert.ok(attempts > 1, `expected retries before giving up, got ${attempts}`);
  assert.equal(tmp.db.get<{ n: number }>("SELECT count(*) AS n FROM apalis_tasks")?.n, 0);
});

Deno.test("retryBusy() passes other errors through at once when the write fails for another reason", async () => {
  await using tmp = await tempDatabase();
  let attempts = 0;
  const failure = new TypeError("not a busy error");
  await assert.rejects(
    retryBusy(tmp.db, () => {
      attempts++;
      throw failure;
    }),
    (error: unknown) => error === failure,
  );
  assert.equal(attempts, 1);
  assert.equal(await retryBusy(tmp.db, () => 42), 42);
});

Deno.test("retryBusy() waits once inside SQLite, then restores the connection's busy timeout", async () => {
  await using tmp = await tempDatabase();
  const a = tmp.db;
  a.exec("CREATE TABLE t (who TEXT)");
  using b = connect(tmp.path, { busyTimeoutMs: 7 });
  assert.equal(b.busyTimeoutMs, 7);
  a.exec("BEGIN IMMEDIATE");
  // Released on a timer: the one blocking wait (50 ms) cannot see it; the timed retries do.
  const release = setTimeout(() => a.exec("COMMIT"), 30);
  let attempts = 0;
  const started = performance.now();
  try {
    await retryBusy(b, () => {
      attempts++;
      b.run("INSERT INTO t (who) VALUES ('b')");
    });
  } finally {
    clearTimeout(release);
  }
  assert.ok(attempts >= 3, `the first try, the blocking wait, then timed retries: ${attempts}`);
  assert.ok(performance.now() - started >= 50, "the blocking wait lasted its 50 ms");
  const timeout = b.get<{ timeout: number }>("PRAGMA busy_timeout");
  assert.equal(timeout?.timeout, 7, "the connection's own busy timeout is back");
});

Deno.test("openDatabase() waits for a lock on the file up to busyRetryMs, then throws DatabaseOpenError saying how long it waited", async () => {
  await using tmp = await tempDatabase({ setup: false });
  tmp.db.close();
  // A file in rollback mode, locked whole by another connection (as while it switches to WAL).
  await Deno.remove(tmp.path);
  const holder = new DatabaseSync(tmp.path);
  holder.exec("CREATE TABLE app (x); BEGIN EXCLUSIVE; INSERT INTO app VALUES (1);");
  try {
    const started = Date.now();
    assert.throws(
      () => openDatabase(tmp.path, { busyRetryMs: 150 }),
      (error: unknown) => {
        assert.ok(error instanceof DatabaseOpenError, `expected DatabaseOpenError, got ${error}`);
        assert.match(
          error.message,
          new RegExp(
            `^Cannot open database '${tmp.path}': it stayed locked by another connection for \\d+ ms$`,
          ),
        );
        assert.equal(isBusyError(error.cause), false, "the wait is the cause…");
        assert.equal(isBusyError((error.cause as Error).cause), true, "…of the driver's error");
        return true;
      },
    );
    assert.ok(Date.now() - started >= 150, "it waited busyRetryMs");
  } finally {
    holder.exec("ROLLBACK");
    holder.close();
  }
  const db = openDatabase(tmp.path);
  assert.equal(db.busyTimeoutMs, 5);
  assert.equal(db.get<{ timeout: number }>("PRAGMA busy_timeout")?.timeout, 5, "restored");
  db.close();
});

Deno.test("SqliteStorage.setup() waits for a write lock up to busyRetryMs, then throws DatabaseBusyError; the busy timeout is restored", async () => {
  await using tmp = await tempDatabase({ setup: false });
  using b = connect(tmp.path, { busyRetryMs: 150, busyTimeoutMs: 7 });
  tmp.db.exec("BEGIN IMMEDIATE");
  const started = Date.now();
  try {
    assert.throws(() => SqliteStorage.setup(b), (error: unknown) => {
      assert.ok(error instanceof DatabaseBusyError, `expected DatabaseBusyError, got ${error}`);
      assert.match(error.message, /it stayed locked by another connection for \d+ ms$/);
      assert.equal(isBusyError(error.cause), true, "the driver's busy error is the cause");
      return true;
    });
    assert.ok(Date.now() - started >= 150, "it waited busyRetryMs");
  } finally {
    tmp.db.exec("ROLLBACK");
  }
  assert.equal(b.get<{ timeout: number }>("PRAGMA busy_timeout")?.timeout, 7, "restored");
  assert.equal(SqliteStorage.setup(b), SCHEMA_VERSION, "and it sets up once the lock is gone");
});
