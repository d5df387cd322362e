/**
 * Workers started together on a fresh deployment: many processes open a database file that does
 * not exist yet, at the same moment, set it up and push a task. Every one must come up.
 *
 * @module
 */
import assert from "node:assert/strict";
import { openDatabase, SCHEMA_VERSION, SqliteStorage } from "../../mod.ts";
import { schemaVersion } from "../../lib/store/schema.ts";
import { waitUntil } from "../_wait.ts";
import { exitOf, reap } from "./processes.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const CHILD = new URL("./fresh_open_process.ts", import.meta.url).pathname;
const PROCESSES = 8;
const TRIALS = 4;

const HAS_BUN = await (async () => {
  try {
    const { success } = await new Deno.Command("bun", { args: ["--version"], stdout: "null" })
      .output();
    return success;
  } catch {
    return false;
  }
})();

interface Runtime {
  name: string;
  argv: string[];
  env: Record<string, string>;
}

/** The runtimes the children take turns on: Deno, and Bun with each of its two drivers. */
const RUNTIMES: Runtime[] = [
  { name: "deno", argv: [Deno.execPath(), "run", "-A", CHILD], env: {} },
  ...(HAS_BUN
    ? [
      { name: "bun node:sqlite", argv: ["bun", "run", CHILD], env: {} },
      {
        name: "bun bun:sqlite",
        argv: ["bun", "run", CHILD],
        env: { APALIS_SQLITE_DRIVER: "bun:sqlite" },
      },
    ]
    : []),
];

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Starts the children on `path`, opens the barrier once all are loaded, and checks the file. */
async function trial(number: number): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "apalis_fresh_" });
  const path = `${dir}/queue.db`;
  const barrier = `${dir}/go`;
  const names = Array.from({ length: PROCESSES }, (_, i) => `p${i}`);
  const runtimes = names.map((_, i) => RUNTIMES[i % RUNTIMES.length]!);
  const children: Deno.ChildProcess[] = [];
  try {
    for (const [i, name] of names.entries()) {
      const [command, ...args] = runtimes[i]!.argv;
      children.push(
        new Deno.Command(command!, {
          args: [...args, path, barrier, name],
          cwd: ROOT,
          env: runtimes[i]!.env,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn(),
      );
    }
    // Every child is loaded and spinning on the barrier before it opens.
    await waitUntil(
      async () => (await Promise.all(names.map((n) => exists(`${barrier}.${n}`)))).every(Boolean),
      "every process to be ready",
      60_000,
    );
    assert.equal(await exists(path), false, "nobody opened the file before the barrier");
    await Deno.writeTextFile(barrier, "");
    const exits = await Promise.all(
      children.map((child, i) => exitOf(child, `${names[i]} (${runtimes[i]!.name})`, 90_000)),
    );
    const failures = exits.flatMap((exit, i) =>
      exit.code === 0 ? [] : [`${names[i]} (${runtimes[i]!.name}): ${exit.stderr.trim()}`]
    );
    assert.deepEqual(failures, [], `trial ${number}: every process comes up`);
    const db = openDatabase(path, { readOnly: true });
    try {
      assert.equal(schemaVersion(db), SCHEMA_VERSION);
      assert.equal(db.get<{ journal_mode: string }>("PRAGMA journal_mode")?.journal_mode, "wal");
      const tasks = await new SqliteStorage<string>(db, "fresh").listTasks({ pageSize: 100 });
      assert.deepEqual(tasks.map((task) => task.args).sort(), names, "one task per process");
      assert.equal((await new SqliteStorage(db).stats()).total, PROCESSES, "and no other task");
    } finally {
      db.close();
    }
  } finally {
    await reap(children);
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test(
  `${PROCESSES} processes (${
    RUNTIMES.map((r) => r.name).join(", ")
  }) opening a database that does not exist yet at the same moment all set it up and push, ${TRIALS} times over`,
  async () => {
    for (let number = 1; number <= TRIALS; number++) await trial(number);
  },
);
