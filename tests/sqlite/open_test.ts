import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { DatabaseOpenError, type Durability, openDatabase, SqliteStorage } from "../../mod.ts";

/** A fresh temp dir, removed on dispose. */
async function tempDir(): Promise<{ dir: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "apalis_open_" });
  return {
    dir,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

Deno.test("openDatabase() enables WAL, synchronous NORMAL and foreign keys when opening a file", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/queue.db`;
  const db = openDatabase(path);
  try {
    assert.equal(db.path, path);
    assert.equal(db.durability, "normal");
    assert.equal(db.closed, false);
    assert.equal(db.get<{ journal_mode: string }>("PRAGMA journal_mode")?.journal_mode, "wal");
    assert.equal(db.get<{ synchronous: number }>("PRAGMA synchronous")?.synchronous, 1);
    assert.equal(db.get<{ foreign_keys: number }>("PRAGMA foreign_keys")?.foreign_keys, 1);
  } finally {
    db.close();
  }
  assert.equal(await exists(path), true);
});

Deno.test("openDatabase() sets synchronous FULL when durability is full", async () => {
  await using tmp = await tempDir();
  const db = openDatabase(`${tmp.dir}/queue.db`, { durability: "full" });
  try {
    assert.equal(db.durability, "full");
    assert.equal(db.get<{ synchronous: number }>("PRAGMA synchronous")?.synchronous, 2);
    assert.equal(db.get<{ journal_mode: string }>("PRAGMA journal_mode")?.journal_mode, "wal");
  } finally {
    db.close();
  }
});

Deno.test("openDatabase() opens an in-memory database when the path is :memory:", () => {
  const db = openDatabase(":memory:");
  try {
    db.exec("CREATE TABLE t (x INTEGER)");
    db.run("INSERT INTO t (x) VALUES (?)", [7]);
    assert.deepEqual(db.all("SELECT x FROM t").map((row) => ({ ...row })), [{ x: 7 }]);
    assert.equal(db.get<{ foreign_keys: number }>("PRAGMA foreign_keys")?.foreign_keys, 1);
  } finally {
    db.close();
  }
});

Deno.test("Database.values() returns each row as its columns in order, blobs as bytes, and names the file on error", () => {
  const db = openDatabase(":memory:");
  try {
    db.exec("CREATE TABLE t (a INTEGER, b TEXT, c BLOB)");
    db.run("INSERT INTO t VALUES (1, 'x', X'0102'), (2, NULL, NULL)");
    const rows = db.values<[number, string | null, Uint8Array | null]>(
      "SELECT a, b, c FROM t WHERE a >= ? ORDER BY a",
      [1],
    );
    assert.deepEqual(rows, [[1, "x", new Uint8Array([1, 2])], [2, null, null]]);
    // The same statement still returns objects through all(): the two modes do not mix.
    assert.deepEqual(
      db.all("SELECT a, b, c FROM t WHERE a >= ? ORDER BY a", [2]).map((row) => ({ ...row })),
      [{ a: 2, b: null, c: null }],
    );
    assert.throws(() => db.values("SELECT * FROM apalis_tasks"), /never set up/);
  } finally {
    db.close();
  }
});

Deno.test("openDatabase() throws a TypeError naming the option when durability is invalid", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/queue.db`;
  assert.throws(
    () => openDatabase(path, { durability: "extra" as Durability }),
    (error: unknown) =>
      error instanceof TypeError && error.message.includes("'durability'") &&
      error.message.includes('"extra"') && error.message.includes(path),
  );
  assert.equal(await exists(path), false, "a rejected open must not create the file");
});

Deno.test("openDatabase() throws a RangeError when busyTimeoutMs is negative", async () => {
  await using tmp = await tempDir();
  assert.throws(
    () => openDatabase(`${tmp.dir}/queue.db`, { busyTimeoutMs: -1 }),
    (error: unknown) => error instanceof RangeError && error.message.includes("'busyTimeoutMs'"),
  );
});

Deno.test("openDatabase() throws DatabaseOpenError naming the path when the file is not a database", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/garbage.db`;
  const garbage = new Uint8Array(8192);
  for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 37 + 11) % 256;
  await Deno.writeFile(path, garbage);
  assert.throws(
    () => openDatabase(path),
    (error: unknown) => {
      assert.ok(error instanceof DatabaseOpenError, `expected DatabaseOpenError, got ${error}`);
      assert.equal(error.name, "DatabaseOpenError");
      assert.equal(error.path, path);
      assert.ok(error.message.includes(path), error.message);
      assert.match(error.message, /not a SQLite database|corrupt/);
      assert.ok(error.cause instanceof Error, "the driver's error is kept as the cause");
      return true;
    },
  );
  // The garbage is left as it was.
  assert.deepEqual(await Deno.readFile(path), garbage);
});

Deno.test("openDatabase() throws DatabaseOpenError naming the path when its directory is missing", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/missing/dir/queue.db`;
  assert.throws(
    () => openDatabase(path),
    (error: unknown) =>
      error instanceof DatabaseOpenError && error.path === path && error.message.includes(path),
  );
  assert.equal(await exists(`${tmp.dir}/missing`), false);
});

Deno.test("Database.transaction() commits and returns the function's value when it succeeds", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/queue.db`;
  const db = openDatabase(path);
  try {
    db.exec("CREATE TABLE t (x INTEGER)");
    let inside = false;
    const result = db.transaction(() => {
      inside = db.inTransaction;
      db.run("INSERT INTO t (x) VALUES (1)");
      db.run("INSERT INTO t (x) VALUES (2)");
      return "ok";
    });
    assert.equal(result, "ok");
    assert.equal(inside, true);
    assert.equal(db.inTransaction, false);
    // Visible to another connection: it was committed.
    const other = openDatabase(path);
    try {
      assert.equal(other.get<{ n: number }>("SELECT count(*) AS n FROM t")?.n, 2);
    } finally {
      other.close();
    }
  } finally {
    db.close();
  }
});

Deno.test("Database.transaction() rolls back and rethrows when the function throws", async () => {
  await using tmp = await tempDir();
  const db = openDatabase(`${tmp.dir}/queue.db`);
  try {
    db.exec("CREATE TABLE t (x INTEGER)");
    db.run("INSERT INTO t (x) VALUES (0)");
    const boom = new Error("boom");
    assert.throws(
      () =>
        db.transaction(() => {
          db.run("INSERT INTO t (x) VALUES (1)");
          throw boom;
        }),
      (error: unknown) => error === boom,
    );
    assert.equal(db.inTransaction, false);
    assert.deepEqual(db.all<{ x: number }>("SELECT x FROM t").map((row) => row.x), [0]);
    // The connection is usable afterwards.
    db.transaction(() => db.run("INSERT INTO t (x) VALUES (2)"));
    assert.deepEqual(db.all<{ x: number }>("SELECT x FROM t ORDER BY x").map((row) => row.x), [
      0,
      2,
    ]);
  } finally {
    db.close();
  }
});

Deno.test("Database.transaction() nests through savepoints when called inside a transaction", async () => {
  await using tmp = await tempDir();
  const db = openDatabase(`${tmp.dir}/queue.db`);
  try {
    db.exec("CREATE TABLE t (x INTEGER)");
    db.transaction(() => {
      db.run("INSERT INTO t (x) VALUES (1)");
      assert.throws(() =>
        db.transaction(() => {
          db.run("INSERT INTO t (x) VALUES (2)");
          throw new Error("inner fails");
        }), /inner fails/);
      assert.equal(db.inTransaction, true, "the outer transaction is still open");
      db.transaction(() => {
        db.run("INSERT INTO t (x) VALUES (3)");
        db.transaction(() => db.run("INSERT INTO t (x) VALUES (4)"));
      });
    });
    assert.deepEqual(db.all<{ x: number }>("SELECT x FROM t ORDER BY x").map((row) => row.x), [
      1,
      3,
      4,
    ]);

    // An outer failure undoes the inner savepoints that were released.
    assert.throws(() =>
      db.transaction(() => {
        db.transaction(() => db.run("INSERT INTO t (x) VALUES (5)"));
        throw new Error("outer fails");
      }), /outer fails/);
    assert.equal(db.get<{ n: number }>("SELECT count(*) AS n FROM t WHERE x = 5")?.n, 0);
    assert.equal(db.inTransaction, false);
  } finally {
    db.close();
  }
});

Deno.test("Database.transaction() throws a TypeError and rolls back when the function is async", async () => {
  await using tmp = await tempDir();
  const db = openDatabase(`${tmp.dir}/queue.db`);
  try {
    db.exec("CREATE TABLE t (x INTEGER)");
    assert.throws(
      () =>
        db.transaction(() => {
          db.run("INSERT INTO t (x) VALUES (1)");
          return Promise.resolve();
        }),
      TypeError,
    );
    assert.equal(db.get<{ n: number }>("SELECT count(*) AS n FROM t")?.n, 0);
    assert.equal(db.inTransaction, false);
  } finally {
    db.close();
  }
});

Deno.test("Database methods throw an error naming the path when the database is closed", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/queue.db`;
  const db = openDatabase(path);
  db.exec("CREATE TABLE t (x INTEGER)");
  db.get("SELECT count(*) FROM t"); // cache a statement: the cache must not outlive close()
  db.close();
  assert.equal(db.closed, true);
  const closedError = (error: unknown) =>
    error instanceof Error && error.message.includes(path) && /closed/.test(error.message);
  assert.throws(() => db.get("SELECT count(*) FROM t"), closedError);
  assert.throws(() => db.all("SELECT x FROM t"), closedError);
  assert.throws(() => db.run("INSERT INTO t (x) VALUES (1)"), closedError);
  assert.throws(() => db.exec("SELECT 1"), closedError);
  assert.throws(() => db.transaction(() => 1), closedError);
  db.close(); // a second close is harmless
  assert.equal(db.closed, true);
});

// --- Read-only connections ---------------------------------------------------------------------

/** Every file of `dir`: name to its bytes, as a comparable string. */
async function filesOf(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const entry of [...Deno.readDirSync(dir)].sort((a, b) => a.name < b.name ? -1 : 1)) {
    const bytes = await Deno.readFile(`${dir}/${entry.name}`);
    files[entry.name] = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)))
      .map((b) => b.toString(16).padStart(2, "0")).join("");
  }
  return files;
}

Deno.test("openDatabase(path, { readOnly: true }) changes no file: not a database in rollback mode, not an empty file, not a WAL database, and creates none", async () => {
  await using tmp = await tempDir();
  const cases: [string, (path: string) => void][] = [
    ["rollback.db", (path) => {
      const db = new DatabaseSync(path);
      db.exec("CREATE TABLE users (email TEXT); INSERT INTO users VALUES ('a@example.com')");
      db.close();
    }],
    ["empty.db", (path) => Deno.writeTextFileSync(path, "")],
    ["wal.db", (path) => {
      const db = openDatabase(path);
      SqliteStorage.setup(db);
      new SqliteStorage<number>(db, "q").pushSync(1);
      db.close();
    }],
  ];
  for (const [name, make] of cases) {
    const dir = `${tmp.dir}/${name}.d`;
    await Deno.mkdir(dir);
    const path = `${dir}/${name}`;
    make(path);
    const before = await filesOf(dir);
    assert.deepEqual(Object.keys(before), [name], `${name}: no -wal or -shm to begin with`);
    const db = openDatabase(path, { readOnly: true });
    try {
      db.get("SELECT count(*) AS n FROM sqlite_schema");
      if (name === "wal.db") {
        assert.equal((await new SqliteStorage(db).stats()).total, 1);
        // SQLite needs them to read a WAL database; they go with the connection.
        assert.ok(await exists(`${path}-shm`), "SQLite made a -shm file to read");
      }
    } finally {
      db.close();
    }
    assert.deepEqual(await filesOf(dir), before, `${name} and its directory are as they were`);
  }
  const missing = `${tmp.dir}/missing.db`;
  assert.throws(() => openDatabase(missing, { readOnly: true }), DatabaseOpenError);
  assert.equal(await exists(missing), false, "a read-only open creates no file");
});

Deno.test("A read-only connection sees another connection's commits, and leaves the -wal and -shm to connections still open or to a log of commits", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/queue.db`;
  const setup = openDatabase(path);
  SqliteStorage.setup(setup);
  setup.close();
  const names = async () => Object.keys(await filesOf(tmp.dir));

  // A writer opens after the reader, and is still open when the reader closes.
  let reader = openDatabase(path, { readOnly: true });
  let writer = openDatabase(path);
  await new SqliteStorage<number>(writer, "q").push(1);
  assert.equal((await new SqliteStorage(reader).stats()).total, 1, "the reader sees the commit");
  reader.close();
  assert.deepEqual(await names(), ["queue.db", "queue.db-shm", "queue.db-wal"]);
  await new SqliteStorage<number>(writer, "q").push(2);
  writer.close();
  assert.deepEqual(await names(), ["queue.db"], "the writer, last to close, removed them");

  // A writer commits and closes while the reader is open: the log holds its commits.
  reader = openDatabase(path, { readOnly: true });
  writer = openDatabase(path);
  await new SqliteStorage<number>(writer, "q").push(3);
  writer.close();
  assert.equal((await new SqliteStorage(reader).stats()).total, 3);
  const before = await filesOf(tmp.dir);
  reader.close();
  assert.deepEqual(await filesOf(tmp.dir), before, "the log of commits is left as it was");
  const next = openDatabase(path);
  assert.equal((await new SqliteStorage(next).stats()).total, 3, "and the next open reads it");
  next.close();
  assert.deepEqual(await names(), ["queue.db"]);
});
