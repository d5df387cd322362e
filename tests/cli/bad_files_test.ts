/**
 * The CLI on bad database files: one clear line on stderr, a non-zero exit, no stack trace.
 *
 * @module
 */
import assert from "node:assert/strict";
import { captureIo, main } from "../../lib/cli/mod.ts";
import { runCommand } from "../_command.ts";
import { makeDatabase, scribble } from "../_bad_files.ts";
import { ignoredBecause, unprivileged, withoutPrivileges } from "../_unprivileged.ts";
import { ALL_CASES, type Outcome, runMatrix } from "./_file_matrix.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const CLI = new URL("../../cli.ts", import.meta.url).pathname;
const MATRIX = new URL("./_file_matrix.ts", import.meta.url).pathname;
const PAGE = 4096;

async function run(args: string[]) {
  const io = captureIo({ env: {} });
  const code = await main(args, io);
  return { code, out: io.out, err: io.err };
}

/** A fresh temp dir, removed on dispose. */
async function tempDir(): Promise<{ dir: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "apalis_cli_bad_" });
  return { dir, [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }) };
}

/** Asserts exactly one line on stderr, matching `line`, and nothing that looks like a stack. */
function assertOneLine(err: string, line: RegExp): void {
  assert.ok(err.endsWith("\n"), JSON.stringify(err));
  assert.equal(err.split("\n").length, 2, `one line, got ${JSON.stringify(err)}`);
  assert.doesNotMatch(err, /\bat .*:\d+:\d+/, "no stack trace");
  assert.match(err.trimEnd(), line);
}

/** `s` with regular expression characters escaped. */
function literal(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

Deno.test("main() prints one line naming the file and exits 1 when the database file is not SQLite, truncated or garbled", async () => {
  await using tmp = await tempDir();
  const text = `${tmp.dir}/notes.txt`;
  await Deno.writeTextFile(text, "these are my notes\n".repeat(50));
  const truncated = `${tmp.dir}/truncated.db`;
  makeDatabase(truncated);
  await Deno.truncate(truncated, 3000);
  const garbled = `${tmp.dir}/garbled.db`;
  makeDatabase(garbled);
  await scribble(garbled, 100, PAGE - 100);
  const cases: [string, string][] = [
    [text, "the file is not a SQLite database or is corrupt"],
    [truncated, "the database is corrupt (database disk image is malformed)"],
    [garbled, "the database is corrupt (database disk image is malformed)"],
    [tmp.dir, "it is a directory"],
  ];
  for (const [path, why] of cases) {
    for (const args of [["stats"], ["ls", "q"], ["queues"], ["push", "q", "1"], ["init"]]) {
      const { code, out, err } = await run(["--db", path, ...args]);
      assert.equal(code, 1, `${args[0]} on ${path}: ${err}`);
      assert.equal(out, "");
      assertOneLine(
        err,
        new RegExp(`^apalis ${args[0]}: ${literal(`Cannot open database '${path}': ${why}`)}$`),
      );
    }
  }
  assert.equal(await Deno.readTextFile(text), "these are my notes\n".repeat(50), "left as it was");
});

Deno.test("main() prints one line naming the file and exits 1 when data pages are corrupt in a file that opens", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/queue.db`;
  makeDatabase(path);
  const size = (await Deno.stat(path)).size;
  await scribble(path, size - 3 * PAGE, 3 * PAGE);
  const ls = await run(["--db", path, "ls", "q", "--limit", "1000"]);
  assert.equal(ls.code, 1, ls.err);
  assertOneLine(
    ls.err,
    new RegExp(
      `^apalis ls: ${
        literal(
          `Cannot use database '${path}': the file is corrupt or not a SQLite database (database disk image is malformed)`,
        )
      }$`,
    ),
  );
  const push = await run(["--db", path, "push", "q", '"x"']);
  assert.equal(push.code, 1, push.err);
  assertOneLine(
    push.err,
    new RegExp(
      `^apalis push: ${
        literal(`Cannot push task to queue 'q' in database '${path}': the file is corrupt`)
      }`,
    ),
  );
});

Deno.test("cli.ts prints one line without a stack trace and exits 1 when --db is not a SQLite file", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.dir}/notes.txt`;
  await Deno.writeTextFile(path, "not a database\n");
  const { code, stdout, stderr } = await runCommand(Deno.execPath(), {
    args: ["run", "-A", CLI, "--db", path, "stats"],
    cwd: ROOT,
    stdin: "null",
  });
  assert.equal(code, 1, stderr);
  assert.equal(stdout, "");
  assert.equal(
    stderr,
    `apalis stats: Cannot open database '${path}': the file is not a SQLite database or is corrupt\n`,
  );
});

const RUNNER = await unprivileged();

Deno.test({
  name: `cli.ts prints one line and exits 1 when pushing to a read-only file, and reads it fine${
    ignoredBecause(RUNNER)
  }`,
  ignore: "why" in RUNNER,
  async fn() {
    await using tmp = await tempDir();
    const path = `${tmp.dir}/queue.db`;
    makeDatabase(path);
    await Deno.chmod(path, 0o444);
    const cli = async (...args: string[]) => {
      const [command, ...rest] = withoutPrivileges(RUNNER, [
        Deno.execPath(),
        "run",
        "-A",
        CLI,
        "--db",
        path,
        ...args,
      ]);
      return await runCommand(command!, { args: rest, cwd: ROOT, stdin: "null" });
    };
    const stats = await cli("stats", "--json");
    assert.equal(stats.code, 0, stats.stderr);
    assert.equal(JSON.parse(stats.stdout).total.pending, 200);
    const push = await cli("push", "q", '"x"');
    assert.equal(push.code, 1, push.stderr);
    assert.equal(push.stdout, "");
    assert.equal(
      push.stderr,
      `apalis push: Cannot push task to queue 'q' in database '${path}': the file or its directory is read-only (attempt to write a readonly database)\n`,
    );
  },
});

// --- Files that are not apalis databases -------------------------------------------------------

/** What each command must do on each kind of file: its exit code, its one line, its changes. */
function expected(outcome: Outcome): Pick<Outcome, "code" | "err" | "changes"> {
  const { kind, path } = outcome;
  const [command] = outcome.args as [string];
  const creates = command === "push" || command === "init";
  if (kind === "apalis") return { code: 0, err: "", changes: [] };
  if (kind === "missing") {
    return creates ? { code: 0, err: "", changes: ["+queue.db"] } : {
      code: 2,
      err:
        `apalis ${command}: Cannot open database '${path}': no such file (create it with 'apalis init', or pass --db)\n`,
      changes: [],
    };
  }
  if (kind === "text") {
    return {
      code: 1,
      err:
        `apalis ${command}: Cannot open database '${path}': the file is not a SQLite database or is corrupt\n`,
      changes: [],
    };
  }
  // Another application's database, or an empty file: only init sets it up.
  if (command === "init") return { code: 0, err: "", changes: ["~queue.db"] };
  return {
    code: 2,
    err:
      `apalis ${command}: Cannot use database '${path}': it has no apalis tables (run 'apalis init' first)\n`,
    changes: [],
  };
}

function assertOutcomes(outcomes: Outcome[]): void {
  const wrong = outcomes.flatMap((outcome) => {
    const want = expected(outcome);
    const got = { code: outcome.code, err: outcome.err, changes: outcome.changes };
    return JSON.stringify(got) === JSON.stringify(want) ? [] : [
      `${outcome.args.join(" ")} on ${outcome.kind}: got ${JSON.stringify(got)}, want ${
        JSON.stringify(want)
      }`,
    ];
  });
  assert.deepEqual(wrong, [], `${wrong.length} of ${outcomes.length} runs went wrong`);
  const boards = outcomes.filter((o) => o.args[0] === "board");
  for (const board of boards) {
    assert.equal(board.board, board.kind === "apalis" ? 200 : undefined, `board on ${board.kind}`);
  }
}

Deno.test("main(): read-only commands change no file on any file, and write commands refuse what is not an apalis database without touching it", async () => {
  await using tmp = await tempDir();
  assertOutcomes(await runMatrix(tmp.dir, ALL_CASES));
});

const HAS_BUN = await (async () => {
  try {
    return (await new Deno.Command("bun", { args: ["--version"], stdout: "null" }).output())
      .success;
  } catch {
    return false;
  }
})();

for (const driver of ["node:sqlite", "bun:sqlite"]) {
  Deno.test({
    name:
      `Under Bun (${driver}), read-only commands change no file and write commands refuse what is not an apalis database without touching it${
        HAS_BUN ? "" : " (ignored: bun is not installed)"
      }`,
    ignore: !HAS_BUN,
    async fn() {
      await using tmp = await tempDir();
      const { code, stdout, stderr } = await runCommand("bun", {
        args: ["run", MATRIX, tmp.dir],
        cwd: ROOT,
        env: driver === "bun:sqlite" ? { APALIS_SQLITE_DRIVER: "bun:sqlite" } : {},
        stdin: "null",
      });
      assert.equal(code, 0, stderr);
      const outcomes = stdout.trim().split("\n").map((line) => JSON.parse(line) as Outcome);
      assert.equal(outcomes.length, 5 * 12 + 6, "every case ran");
      assertOutcomes(outcomes);
    },
  });
}
