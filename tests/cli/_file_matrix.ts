// deno-lint-ignore-file no-console
/**
 * Points every CLI command at files that are not apalis databases (and read-only commands at one
 * that is), each in a directory of its own, and records what each run did to the directory.
 * `tests/cli/bad_files_test.ts` runs it in-process under Deno and as
 * `bun run tests/cli/_file_matrix.ts <dir>` under Bun with each driver (then it prints one JSON
 * outcome per line), so it only uses `node:` APIs.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { DatabaseSync } from "node:sqlite";
import { openDatabase, SqliteStorage } from "../../mod.ts";
import { captureIo, main } from "../../lib/cli/mod.ts";

/** The id of the one task of the `apalis` file (the one `show`, `retry` and `kill` name). */
export const TASK_ID = "task-1";

/** What the CLI is pointed at. */
export const FILE_KINDS = {
  /** Another application's database in rollback (`delete`) journal mode, with its own table. */
  "app-delete": (path: string) => appDatabase(path, "DELETE"),
  /** Another application's database in WAL mode, closed cleanly (no -wal or -shm left). */
  "app-wal": (path: string) => appDatabase(path, "WAL"),
  /** A file of 0 bytes. */
  "empty": (path: string) => writeFileSync(path, ""),
  /** A text file. */
  "text": (path: string) => writeFileSync(path, "these are my notes\n".repeat(50)),
  /** No file at all. */
  "missing": (_path: string) => {},
  /** An apalis database with one task, closed cleanly (no -wal or -shm left). */
  "apalis": (path: string) => {
    const db = openDatabase(path);
    SqliteStorage.setup(db);
    new SqliteStorage<number>(db, "q").pushSync(1, { id: TASK_ID });
    db.close();
  },
} as const;

/** One kind of file. */
export type FileKind = keyof typeof FILE_KINDS;

/** Commands that only read. */
export const READ_COMMANDS: readonly string[][] = [
  ["ls"],
  ["show", TASK_ID],
  ["stats"],
  ["queues"],
  ["workers"],
  ["board", "--port", "0"],
];

/** Commands that write (`push` and `init` create a missing file). */
export const WRITE_COMMANDS: readonly string[][] = [
  ["retry", TASK_ID],
  ["kill", TASK_ID],
  ["vacuum"],
  ["work", "q", "--exec", "true"],
  ["push", "q", "1"],
  ["init"],
];

/** What one command did on one kind of file. */
export interface Outcome {
  kind: FileKind;
  args: string[];
  path: string;
  code: number;
  out: string;
  err: string;
  /** The board answered `/api/overview` with this status (when it started at all). */
  board?: number;
  /** `+name` created, `-name` removed, `~name` changed: every file of the directory. */
  changes: string[];
}

function appDatabase(path: string, journal: "DELETE" | "WAL"): void {
  const db = new DatabaseSync(path);
  db.exec(`PRAGMA journal_mode = ${journal};
    CREATE TABLE users (email TEXT NOT NULL);
    INSERT INTO users (email) VALUES ('a@example.com'), ('b@example.com');`);
  db.close();
}

/** Every file of `dir`: name to a hash of its bytes. */
function snapshot(dir: string): Map<string, string> {
  return new Map(
    readdirSync(dir).sort().map((
      name,
    ) => [name, createHash("sha256").update(readFileSync(`${dir}/${name}`)).digest("hex")]),
  );
}

function changes(before: Map<string, string>, after: Map<string, string>): string[] {
  const found: string[] = [];
  for (const [name, hash] of after) {
    if (!before.has(name)) found.push(`+${name}`);
    else if (before.get(name) !== hash) found.push(`~${name}`);
  }
  for (const name of before.keys()) if (!after.has(name)) found.push(`-${name}`);
  return found;
}

/**
 * Runs `args` through `main()` on `path`. A board that starts is asked for its overview and
 * stopped; a worker that starts is stopped after a moment (neither should on a bad file).
 */
async function runCli(path: string, args: string[]): Promise<Omit<Outcome, "kind" | "changes">> {
  const io = captureIo({ env: {} });
  const exit = main(["--db", path, ...args], io);
  let board: number | undefined;
  const started = Date.now();
  let code: number | undefined;
  exit.then((c) => code = c);
  while (code === undefined) {
    const address = io.out.match(/http:\/\/127\.0\.0\.1:\d+\//)?.[0];
    if (address && board === undefined) {
      const response = await fetch(`${address}api/overview`);
      board = response.status;
      await response.body?.cancel();
      io.interrupt();
    }
    if (args[0] === "work" && Date.now() - started > 2000) io.interrupt();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { args, path, code, out: io.out, err: io.err, ...(board === undefined ? {} : { board }) };
}

/** Runs each command on a fresh file of each kind, each in a directory of its own under `root`. */
export async function runMatrix(
  root: string,
  cases: readonly { kinds: readonly FileKind[]; commands: readonly string[][] }[],
): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  let n = 0;
  for (const { kinds, commands } of cases) {
    for (const kind of kinds) {
      for (const args of commands) {
        const dir = `${root}/${n++}`;
        mkdirSync(dir);
        const path = `${dir}/queue.db`;
        FILE_KINDS[kind](path);
        const before = snapshot(dir);
        const outcome = await runCli(path, args);
        outcomes.push({ kind, ...outcome, changes: changes(before, snapshot(dir)) });
      }
    }
  }
  return outcomes;
}

/** Every file kind with every command, and the apalis database with the read-only commands. */
export const ALL_CASES = [
  {
    kinds: ["app-delete", "app-wal", "empty", "text", "missing"] as FileKind[],
    commands: [...READ_COMMANDS, ...WRITE_COMMANDS],
  },
  { kinds: ["apalis"] as FileKind[], commands: READ_COMMANDS },
];

if (import.meta.main) {
  const root = process.argv[2];
  if (!root) throw new Error("usage: _file_matrix.ts <empty dir>");
  for (const outcome of await runMatrix(root, ALL_CASES)) console.log(JSON.stringify(outcome));
}
