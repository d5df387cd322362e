import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { type CommandRun, runCommand } from "./_command.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** Runs an example as a subprocess (`deno run -A` or `bun run`) with its own temp dir. */
async function runExample(
  runtime: "deno" | "bun",
  example: string,
  tmpDir: string,
): Promise<CommandRun> {
  const [command, args] = runtime === "deno"
    ? [Deno.execPath(), ["run", "-A", `examples/${example}`]]
    : ["bun", ["run", `examples/${example}`]];
  return await runCommand(command, {
    args,
    cwd: ROOT,
    env: { TMPDIR: tmpDir, NO_COLOR: "1" },
  });
}

/** Runs `fn` with a fresh temp dir that is removed afterwards. */
async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "apalis_examples_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function assertExitedCleanly(run: CommandRun, example: string): void {
  assert.equal(
    run.code,
    0,
    `${example} exited with ${run.code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`,
  );
}

function linesMatching(text: string, pattern: RegExp): string[] {
  return text.split("\n").filter((line) => pattern.test(line));
}

function checkBasic(run: CommandRun): void {
  assertExitedCleanly(run, "basic.ts");
  assert.match(run.stdout, /^pushed 10 tasks, due in 1 s$/m);
  const handled = linesMatching(run.stdout, /^reminder \d+ sent /)
    .map((line) => Number(line.split(" ")[1]))
    .sort((a, b) => a - b);
  assert.deepEqual(handled, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.match(run.stdout, /^done: 10 of 10$/m);
}

function checkDemo(run: CommandRun, tmpDir: string): void {
  assertExitedCleanly(run, "demo.ts");
  const dbLine = linesMatching(run.stdout, /^database: /)[0];
  assert.ok(dbLine, "demo prints the database path");
  const path = dbLine.slice("database: ".length);
  assert.ok(path.startsWith(tmpDir), `${path} is in the OS temp dir ${tmpDir}`);
  assert.ok(Deno.statSync(path).isFile, "the demo database file exists after the run");
  // The live log: one line per outcome.
  assert.equal(linesMatching(run.stdout, /^\+\d+\.\d+s {2}sent /).length, 47);
  const retries = linesMatching(run.stdout, /^\+\d+\.\d+s {2}retry /);
  assert.equal(retries.length, 3);
  for (const line of retries) assert.match(line, /retry scheduled in \d+ ms$/);
  assert.equal(linesMatching(run.stdout, /^\+\d+\.\d+s {2}killed /).length, 1);
  // The final counts: every task done, except the one killed on purpose.
  for (
    const [state, count] of [
      ["pending", 0],
      ["queued", 0],
      ["running", 0],
      ["done", 47],
      ["failed", 0],
      ["killed", 1],
      ["total", 48],
    ] as const
  ) {
    assert.match(run.stdout, new RegExp(`^${state}\\s+${count}$`, "m"));
  }
  assert.match(run.stdout, /^3 tasks succeeded on a retry$/m);
  assert.match(run.stdout, /^killed: AbortError: mailbox nobody@invalid does not exist$/m);
  assert.ok(run.stdout.split("\n").length < 80, "the demo output stays under 80 lines");
}

function checkPushSync(run: CommandRun): void {
  assertExitedCleanly(run, "pushsync.ts");
  assert.match(run.stdout, /^signed up ada@example.com: user row and welcome task \w{26} /m);
  assert.match(run.stdout, /^signup rolled back: /m);
  assert.match(run.stdout, /^users: 1, welcome tasks: 1$/m);
  assert.match(run.stdout, /^done: welcome email sent to ada@example.com \(user 1\)$/m);
}

// The same examples under Bun, when it is installed (CI installs it).
const hasBun = (() => {
  try {
    return new Deno.Command("bun", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

function checkOrderFulfilment(run: CommandRun): void {
  assertExitedCleanly(run, "order_fulfilment.ts");
  assert.match(run.stdout, /^\[1001\] Charging \$74\.99 for 3 item\(s\)\.\.\.$/m);
  assert.match(run.stdout, /^\[1001\] 2 item\(s\) confirmed in stock$/m);
  assert.match(run.stdout, /^run \w{26}: done$/m);
  assert.match(run.stdout, /^result: "emailed alice@example\.com \(TRACK-1001\)"$/m);
}

function checkDag(run: CommandRun): void {
  assertExitedCleanly(run, "dag.ts");
  assert.match(run.stdout, /^result: 249$/m);
}

function checkHooked(run: CommandRun): void {
  assertExitedCleanly(run, "hooked.ts");
  assert.match(run.stdout, /^order: 20 19 18 17 16 15 14 13 12 11 10 9 8 7 6 5 4 3 2 1$/m);
}

function checkShared(run: CommandRun): void {
  assertExitedCleanly(run, "shared.ts");
  assert.match(run.stdout, /^Reminder sent! \(ints: 99, task \w{26}\)$/m);
  assert.match(run.stdout, /^Reminder sent! \(maps: \{\}, task \w{26}\)$/m);
  assert.match(run.stdout, /^done: 2 of 2, claims: \d+$/m);
}

for (const runtime of ["deno", "bun"] as const) {
  Deno.test({
    name: `examples/hooked.ts runs the 20 tasks highest priority first when run with ${runtime}`,
    ignore: runtime === "bun" && !hasBun,
    fn: () =>
      withTempDir(async (dir) => {
        checkHooked(await runExample(runtime, "hooked.ts", dir));
      }),
  });
  Deno.test({
    name:
      `examples/shared.ts runs both job types through one shared store when run with ${runtime}`,
    ignore: runtime === "bun" && !hasBun,
    fn: () =>
      withTempDir(async (dir) => {
        checkShared(await runExample(runtime, "shared.ts", dir));
      }),
  });
  Deno.test({
    name: `examples/order_fulfilment.ts runs the seed's pipeline to done when run with ${runtime}`,
    ignore: runtime === "bun" && !hasBun,
    fn: () =>
      withTempDir(async (dir) => {
        checkOrderFulfilment(await runExample(runtime, "order_fulfilment.ts", dir));
      }),
  });
  Deno.test({
    name: `examples/dag.ts runs the seed's DAG to 249 when run with ${runtime}`,
    ignore: runtime === "bun" && !hasBun,
    fn: () =>
      withTempDir(async (dir) => {
        checkDag(await runExample(runtime, "dag.ts", dir));
      }),
  });
}

Deno.test("examples/basic.ts runs the 10 delayed tasks and exits 0 when run with deno", () =>
  withTempDir(async (dir) => {
    checkBasic(await runExample("deno", "basic.ts", dir));
  }));

Deno.test("examples/demo.ts leaves 47 tasks done and 1 killed and exits 0 when run with deno", () =>
  withTempDir(async (dir) => {
    checkDemo(await runExample("deno", "demo.ts", dir), dir);
  }));

Deno.test("examples/pushsync.ts keeps only the committed signup's task when run with deno", () =>
  withTempDir(async (dir) => {
    checkPushSync(await runExample("deno", "pushsync.ts", dir));
  }));

Deno.test({
  name: "examples/basic.ts runs the 10 delayed tasks and exits 0 when run with bun",
  ignore: !hasBun,
  fn: () =>
    withTempDir(async (dir) => {
      checkBasic(await runExample("bun", "basic.ts", dir));
    }),
});

Deno.test({
  name: "examples/demo.ts leaves 47 tasks done and 1 killed and exits 0 when run with bun",
  ignore: !hasBun,
  fn: () =>
    withTempDir(async (dir) => {
      checkDemo(await runExample("bun", "demo.ts", dir), dir);
    }),
});

Deno.test({
  name: "examples/pushsync.ts keeps only the committed signup's task when run with bun",
  ignore: !hasBun,
  fn: () =>
    withTempDir(async (dir) => {
      checkPushSync(await runExample("bun", "pushsync.ts", dir));
    }),
});
