/**
 * The CLI's output through real pipes, on the compiled binary (`bun build --compile`) and on
 * `deno run cli.ts`: several MB of JSON reach a slow reader whole before the process exits, and
 * a reader that goes away (`| head`) ends the command at once, quietly, with exit code 141.
 * Each pipeline runs in `bash` in its own session; one still running after `LINGER_MS` is killed
 * and fails the test. The binary tests are ignored without bun unless
 * `APALIS_BINARY_TEST=required`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { openDatabase, SqliteStorage, Task, type TaskRecord } from "../../mod.ts";
import { buildTestBinary, IGNORE_BINARY_TEST, warnIfIgnored } from "./_binary.ts";

warnIfIgnored("binary_pipe_test");

const CLI = fileURLToPath(new URL("../../cli.ts", import.meta.url));
const SLOW_READER = fileURLToPath(new URL("./slow_reader.ts", import.meta.url));
/** A pipeline still running after this long has lingered (liveness, not speed). */
const LINGER_MS = 30_000;
const TASKS = 2000;
/** The exit code of a command whose reader went away, as a shell shows a SIGPIPE death. */
const BROKEN_PIPE = 141;

/** The database the pipes read: 2000 tasks of about 3 KB in "q", one of 4 MiB in "big". */
interface Fixture {
  dir: string;
  db: string;
  ids: string[];
  big: { id: string; blob: string };
}

/** Payload text with multi-byte characters, so a cut inside one is caught by the decoder. */
function text(n: number, length: number): string {
  const unit = `task ${n} é✓ 漢字 `;
  return unit.repeat(Math.ceil(length / unit.length)).slice(0, length);
}

async function seed(dir: string): Promise<Fixture> {
  const path = `${dir}/pipes.db`;
  const db = openDatabase(path);
  try {
    SqliteStorage.setup(db);
    const storage = new SqliteStorage(db);
    const tasks = Array.from({ length: TASKS }, (_, n) => new Task({ n, text: text(n, 3000) }));
    const ids = await storage.forQueue("q").pushAll(tasks);
    const blob = text(-1, 4 * 1024 * 1024);
    const id = await storage.forQueue("big").push({ blob });
    return { dir, db: path, ids, big: { id, blob } };
  } finally {
    db.close();
  }
}

interface PipelineRun {
  apalisCode: number;
  readerCode: number;
  out: string;
  err: string;
}

const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;

/**
 * Runs `APALIS... 2>err | READER... >out` in bash, in a session of its own, and returns both
 * exit codes and what each printed; fails if the pipeline outlives `LINGER_MS`.
 */
async function pipeline(
  fixture: Fixture,
  apalis: string[],
  reader: string[],
): Promise<PipelineRun> {
  const out = `${fixture.dir}/out`;
  const err = `${fixture.dir}/err`;
  const script = `${apalis.map(quote).join(" ")} 2>${quote(err)} | ${
    reader.map(quote).join(" ")
  } >${quote(out)}; echo "\${PIPESTATUS[0]} \${PIPESTATUS[1]}"`;
  const child = new Deno.Command("setsid", {
    args: ["bash", "-c", script],
    env: { APALIS_DB: fixture.db, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let lingered = false;
  const timer = setTimeout(() => {
    lingered = true;
    try {
      Deno.kill(-child.pid, "SIGKILL"); // the whole session: bash, apalis and the reader
    } catch {
      // already gone
    }
  }, LINGER_MS);
  const { stdout } = await child.output().finally(() => clearTimeout(timer));
  const shown = `${apalis.slice(-6).join(" ")} | ${reader.join(" ")}`;
  assert.ok(!lingered, `'${shown}' was still running after ${LINGER_MS} ms`);
  const [apalisCode, readerCode] = new TextDecoder().decode(stdout).trim().split(" ").map(Number);
  const decoder = new TextDecoder("utf-8", { fatal: true }); // a cut character throws
  return {
    apalisCode: apalisCode!,
    readerCode: readerCode!,
    out: decoder.decode(await Deno.readFile(out)),
    err: decoder.decode(await Deno.readFile(err)),
  };
}

/** Runs `APALIS... >/dev/full` (every write fails: no space left) in bash. */
async function toFullDevice(fixture: Fixture, apalis: string[]) {
  const { code, stdout, stderr } = await new Deno.Command("bash", {
    args: ["-c", `${apalis.map(quote).join(" ")} >/dev/full`],
    env: { APALIS_DB: fixture.db, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, out: new TextDecoder().decode(stdout), err: new TextDecoder().decode(stderr) };
}

/** The steps, for one way of running apalis (`apalis` is the command before its arguments). */
async function checkPipes(t: Deno.TestContext, fixture: Fixture, apalis: string[]) {
  const slow = [Deno.execPath(), "run", "--quiet", SLOW_READER, "16384", "2"];

  await t.step("ls --limit 2000 --json reaches a slow reader whole, then exits 0", async () => {
    const run = await pipeline(fixture, [...apalis, "ls", "q", "--limit", "2000", "--json"], slow);
    assert.equal(run.err, "");
    assert.equal(run.apalisCode, 0);
    assert.equal(run.readerCode, 0);
    assert.ok(run.out.length > 6_000_000, `${run.out.length} characters of JSON`);
    const tasks: TaskRecord[] = JSON.parse(run.out);
    assert.equal(tasks.length, TASKS);
    assert.deepEqual(tasks.map((task) => task.id).sort(), [...fixture.ids].sort());
    for (const task of tasks) {
      const { n, text: body } = task.args as { n: number; text: string };
      assert.equal(body, text(n, 3000));
    }
  });

  await t.step("ls as a table reaches a slow reader whole", async () => {
    const run = await pipeline(fixture, [...apalis, "ls", "q", "--limit", "2000"], slow);
    assert.equal(run.err, "");
    assert.equal(run.apalisCode, 0);
    const lines = run.out.trimEnd().split("\n");
    assert.match(lines[0]!, /^ID +STATUS/);
    assert.equal(lines.length, TASKS + 1);
    assert.deepEqual(
      lines.slice(1).map((line) => line.split(" ")[0]).sort(),
      [...fixture.ids].sort(),
    );
  });

  await t.step("show --json of a 4 MiB task reaches a slow reader whole", async () => {
    const run = await pipeline(fixture, [...apalis, "show", fixture.big.id, "--json"], slow);
    assert.equal(run.err, "");
    assert.equal(run.apalisCode, 0);
    const task: TaskRecord = JSON.parse(run.out);
    assert.equal(task.id, fixture.big.id);
    assert.equal((task.args as { blob: string }).blob, fixture.big.blob);
  });

  await t.step("ls --json | head -c 100 ends apalis quietly with 141", async () => {
    const run = await pipeline(
      fixture,
      [...apalis, "ls", "q", "--limit", "2000", "--json"],
      ["head", "-c", "100"],
    );
    assert.equal(run.err, "", "nothing on stderr: no stack trace");
    assert.equal(run.apalisCode, BROKEN_PIPE);
    assert.equal(run.readerCode, 0);
    assert.equal(run.out.length, 100);
    assert.ok(run.out.startsWith("[\n  {\n"));
  });

  await t.step("show --json | head -1 ends apalis quietly with 141", async () => {
    const run = await pipeline(
      fixture,
      [...apalis, "show", fixture.big.id, "--json"],
      ["head", "-n", "1"],
    );
    assert.equal(run.err, "");
    assert.equal(run.apalisCode, BROKEN_PIPE);
    assert.equal(run.out, "{\n");
  });

  await t.step("stats --watch | head -1 ends the watch quietly with 141", async () => {
    const run = await pipeline(
      fixture,
      [...apalis, "stats", "--watch", "--interval", "50ms"],
      ["head", "-n", "1"],
    );
    assert.equal(run.err, "");
    assert.equal(run.apalisCode, BROKEN_PIPE);
    assert.match(run.out, /^Every 50ms: \S+ \(Ctrl-C to stop\)\n$/);
  });

  await t.step("stats --watch --json | head -1 ends the watch quietly with 141", async () => {
    const run = await pipeline(
      fixture,
      [...apalis, "stats", "--watch", "--json", "--interval", "50ms"],
      ["head", "-n", "1"],
    );
    assert.equal(run.err, "");
    assert.equal(run.apalisCode, BROKEN_PIPE);
    assert.equal(JSON.parse(run.out).total.total, TASKS + 1);
  });

  await t.step("ls --json >/dev/full exits 1 and says stdout cannot be written", async () => {
    const run = await toFullDevice(fixture, [...apalis, "ls", "q", "--limit", "2000", "--json"]);
    assert.equal(run.code, 1);
    assert.match(run.err, /^apalis: cannot write to standard output: \S.*\n$/);
  });
}

Deno.test({
  name: "apalis binary writes whole outputs to slow pipes and stops quietly when the reader goes",
  ignore: IGNORE_BINARY_TEST,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "apalis_pipes_bin_" });
    try {
      const bin = await buildTestBinary(`${dir}/apalis`);
      await checkPipes(t, await seed(dir), [bin]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("deno run cli.ts writes whole outputs to slow pipes and stops quietly when the reader goes", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "apalis_pipes_deno_" });
  try {
    await checkPipes(t, await seed(dir), [Deno.execPath(), "run", "-A", "--quiet", CLI]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
