/**
 * Bad database files: corrupt, truncated, not SQLite at all, read-only, in a read-only directory.
 * Each must fail with an error of the library that names the file and the cause.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  DatabaseFileError,
  type DatabaseFileProblem,
  DatabaseOpenError,
  openDatabase,
  SCHEMA_VERSION,
  SchemaMissingError,
  SqliteStorage,
  WorkerBuilder,
} from "../../mod.ts";
import { tempDatabase } from "../_helpers.ts";
import { makeDatabase, scribble } from "../_bad_files.ts";
import { ignoredBecause, unprivileged, withoutPrivileges } from "../_unprivileged.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const PROBE = new URL("../e2e/read_only_process.ts", import.meta.url).pathname;
const PAGE = 4096;

/** A fresh temp dir, made writable again and removed on dispose. */
async function tempDir(): Promise<{ dir: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "apalis_bad_" });
  return {
    dir,
    async [Symbol.asyncDispose]() {
      await Deno.chmod(dir, 0o755);
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Asserts a `DatabaseOpenError` for `path` whose message names the path and matches `cause`. */
function assertOpenError(path: string, cause: RegExp): (error: unknown) => true {
  return (error: unknown) => {
    assert.ok(error instanceof DatabaseOpenError, `expected DatabaseOpenError, got ${error}`);
    assert.equal(error.path, path);
    assert.ok(error.message.startsWith(`Cannot open database '${path}': `), error.message);
    assert.match(error.message, cause);
    assert.ok(!error.message.includes("\n"), "one line");
    return true;
  };
}

/** Asserts a `DatabaseFileError` for `path` with `problem` and the exact message start. */
function assertFileError(
  path: string,
  problem: DatabaseFileProblem,
  start: string,
): (error: unknown) => true {
  return (error: unknown) => {
    assert.ok(error instanceof DatabaseFileError, `expected DatabaseFileError, got ${error}`);
    assert.equal(error.path, path);
    assert.equal(error.problem, problem);
    assert.ok(error.message.startsWith(start), `${error.message} should start with ${start}`);
    assert.ok(error.cause instanceof Error, "the driver's error is kept as the cause");
    assert.ok(!error.message.includes("\n"), "one line");
    return true;
  };
}

Deno.test("openDatabase() throws DatabaseOpenError naming the path when the file is text, not SQLite", async () => {
  await using tmp = await tempDir();
  const files: [string, string][] = [["notes.db", "hello world\n".repeat(100)], ["tiny.db", "hi"]];
  for (const [name, text] of files) {
    const path = `${tmp.dir}/${name}`;
    await Deno.writeTextFile(path, text);
    assert.throws(() => openDatabase(path), assertOpenError(path, /not a SQLite database/));
    assert.equal(await Deno.readTextFile(path), text, "the file is left as it was");
    assert.equal(await exists(`${path}-wal`), false);
  }
});

Deno.test("openDatabase() throws DatabaseOpenError naming the path when the file was truncated", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/queue.db`;
  makeDatabase(path);
  const size = (await Deno.stat(path)).size;
  assert.ok(size > 20 * PAGE, `a database of ${size} bytes`);
  await Deno.remove(path);
  // Inside the 100-byte header, inside the first page, and half-way through the file.
  for (const length of [50, 2000, Math.floor(size / 2)]) {
    makeDatabase(path);
    await Deno.truncate(path, length);
    assert.throws(
      () => openDatabase(path),
      assertOpenError(path, /corrupt|not a SQLite database/),
      `truncated to ${length} bytes`,
    );
    await Deno.remove(path);
  }
});

Deno.test("openDatabase() throws DatabaseOpenError naming the path when the pages after the header are garbage", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/queue.db`;
  makeDatabase(path);
  const size = (await Deno.stat(path)).size;
  // The rest of the first page (the schema's root) after the intact 100-byte header...
  await scribble(path, 100, PAGE - 100);
  assert.throws(() => openDatabase(path), assertOpenError(path, /corrupt/));
  // ...and every page after the first one.
  makeDatabase(`${path}.2`);
  await scribble(`${path}.2`, PAGE, size - PAGE);
  assert.throws(() => openDatabase(`${path}.2`), assertOpenError(`${path}.2`, /corrupt/));
});

Deno.test("SqliteStorage throws DatabaseFileError naming the path when data pages are corrupt, and the file opens", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/queue.db`;
  makeDatabase(path);
  const size = (await Deno.stat(path)).size;
  // The last pages hold the newest tasks: the schema is intact, so the open succeeds.
  await scribble(path, size - 3 * PAGE, 3 * PAGE);
  const db = openDatabase(path);
  try {
    const queue = new SqliteStorage<string>(db, "q");
    assert.equal(SqliteStorage.setup(db), SCHEMA_VERSION, "the schema is readable");
    await assert.rejects(
      queue.listTasks({ pageSize: 1000 }),
      assertFileError(path, "corrupt", `Cannot use database '${path}': the file is corrupt`),
    );
    await assert.rejects(
      queue.push("new"),
      assertFileError(
        path,
        "corrupt",
        `Cannot push task to queue 'q' in database '${path}': the file is corrupt`,
      ),
    );
    await assert.rejects(
      queue.push("x"),
      /\(database disk image is malformed\)$/,
      "the driver's words are kept at the end",
    );
    assert.equal(db.inTransaction, false);
  } finally {
    db.close();
  }
});

Deno.test("openDatabase() says why it cannot open a directory or a path whose directory is missing", async () => {
  await using tmp = await tempDir();
  assert.throws(() => openDatabase(tmp.dir), assertOpenError(tmp.dir, /: it is a directory$/));
  const missing = `${tmp.dir}/no/such/dir/queue.db`;
  assert.throws(
    () => openDatabase(missing),
    assertOpenError(
      missing,
      new RegExp(`: its directory '${tmp.dir}/no/such/dir' does not exist$`),
    ),
  );
});

// --- Read-only files and directories ----------------------------------------------------------
//
// Root ignores file modes, so a test process running as root cannot see what a read-only file
// does. These tests run the library in a child process instead: as is for a normal user, and for
// root under `setpriv` without CAP_DAC_OVERRIDE (root then obeys file modes like anyone else).
// Only where neither is possible are they ignored, saying why in their names.

const RUNNER = await unprivileged();
const IGNORED = ignoredBecause(RUNNER);

interface Step {
  step: string;
  ok: boolean;
  name?: string;
  message?: string;
  path?: string;
  problem?: string;
}

/** Runs the read-only probe on `path` without the power to ignore file modes. */
async function probe(path: string, ...flags: string[]): Promise<Map<string, Step>> {
  const argv = withoutPrivileges(RUNNER, [Deno.execPath(), "run", "-A", PROBE, path, ...flags]);
  const output = await new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, `the probe failed: ${stderr}`);
  const steps = new TextDecoder().decode(output.stdout).trim().split("\n")
    .map((line) => JSON.parse(line) as Step);
  return new Map(steps.map((step) => [step.step, step]));
}

Deno.test({
  name:
    `SqliteStorage.push() throws DatabaseFileError naming the path when the file is read-only, while reads work${IGNORED}`,
  ignore: "why" in RUNNER,
  async fn() {
    await using tmp = await tempDir();
    const path = `${tmp.dir}/queue.db`;
    makeDatabase(path, 5);
    await Deno.chmod(path, 0o444);
    const before = await Deno.readFile(path);
    const steps = await probe(path);
    // SQLite opens a file it may not write read-only, without a word: the open, the setup of a
    // file that is already set up, and reads work; the first write fails, clearly.
    assert.deepEqual(steps.get("open"), { step: "open", ok: true });
    assert.deepEqual(steps.get("setup"), { step: "setup", ok: true });
    assert.deepEqual(steps.get("stats"), { step: "stats", ok: true });
    assert.deepEqual(steps.get("push"), {
      step: "push",
      ok: false,
      name: "DatabaseFileError",
      message:
        `Cannot push task to queue 'q' in database '${path}': the file or its directory is read-only (attempt to write a readonly database)`,
      path,
      problem: "read-only",
    });
    assert.deepEqual(await Deno.readFile(path), before, "the file is unchanged");
  },
});

Deno.test({
  name:
    `SqliteStorage.setup() throws DatabaseFileError naming the path when a file to set up is read-only${IGNORED}`,
  ignore: "why" in RUNNER,
  async fn() {
    await using tmp = await tempDir();
    const path = `${tmp.dir}/queue.db`;
    openDatabase(path).close(); // an empty database: nothing set up yet
    await Deno.chmod(path, 0o444);
    const steps = await probe(path);
    assert.deepEqual(steps.get("open"), { step: "open", ok: true });
    const setup = steps.get("setup");
    assert.equal(setup?.name, "DatabaseFileError", JSON.stringify(setup));
    assert.equal(setup?.problem, "read-only");
    assert.equal(setup?.path, path);
    assert.equal(
      setup?.message,
      `Cannot set up the queue tables in database '${path}': the file or its directory is read-only (attempt to write a readonly database)`,
    );
  },
});

Deno.test({
  name:
    `openDatabase() throws DatabaseOpenError saying the directory is read-only when SQLite cannot create the WAL files${IGNORED}`,
  ignore: "why" in RUNNER,
  async fn() {
    await using tmp = await tempDir();
    const path = `${tmp.dir}/queue.db`;
    makeDatabase(path, 5);
    await Deno.chmod(tmp.dir, 0o555);
    const message = (file: string, why: string) => `Cannot open database '${file}': ${why}`;
    // An existing database: WAL needs queue.db-wal and queue.db-shm next to it, read-only or not.
    for (const flags of [[], ["--read-only"]]) {
      const open = (await probe(path, ...flags)).get("open");
      assert.deepEqual(open, {
        step: "open",
        ok: false,
        name: "DatabaseOpenError",
        message: message(
          path,
          "its directory is read-only, and SQLite needs to create the '-wal' and '-shm' files next to it",
        ),
        path,
      }, flags.join(" "));
    }
    // A new database cannot be created there.
    const fresh = `${tmp.dir}/new.db`;
    assert.deepEqual((await probe(fresh)).get("open"), {
      step: "open",
      ok: false,
      name: "DatabaseOpenError",
      message: message(
        fresh,
        `the file does not exist and its directory '${tmp.dir}' is read-only`,
      ),
      path: fresh,
    });
    assert.equal(await exists(fresh), false);
    assert.equal(await exists(`${path}-wal`), false);
  },
});

Deno.test("SqliteStorage and Worker throw SchemaMissingError naming the file when it was never set up", async () => {
  await using tmp = await tempDatabase({ setup: false });
  const storage = new SqliteStorage<number>(tmp.db, "q");
  const calls: [string, () => Promise<unknown>][] = [
    ["push", () => storage.push(1)],
    ["stats", () => storage.stats()],
    ["fetchById", () => storage.fetchById("x")],
    ["listTasks", () => storage.listTasks()],
    [
      "worker.run",
      () => new WorkerBuilder("w").backend(storage).handleSignals(false).build(() => {}).run(),
    ],
  ];
  for (const [name, call] of calls) {
    await assert.rejects(call, (error: unknown) => {
      assert.ok(error instanceof SchemaMissingError, `${name}: ${error}`);
      assert.equal(error.path, tmp.path);
      assert.match(error.message, /never set up.*SqliteStorage\.setup\(db\)/);
      assert.match(String((error.cause as Error).message), /no such table: apalis_/);
      return true;
    }, name);
  }
  SqliteStorage.setup(tmp.db);
  assert.equal(await storage.stats().then((s) => s.total), 0, "usable once set up");
});
