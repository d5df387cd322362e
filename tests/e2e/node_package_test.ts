/**
 * The package for Node, as a Node user gets it: `deno task build:npm`'s output, packed with
 * `npm pack`, installed with `npm install` into a project of its own, imported by plain
 * JavaScript run on Node 22 without flags (from `node_modules`, where Node strips no types), and
 * type-checked by `tsc` against the package's declarations.
 *
 * Needs Node >= 22.13 (`APALIS_NODE` names it; else `node` on the PATH) and npm; without them the
 * test is ignored, unless `APALIS_NODE_TEST=required` (CI), where it fails.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildNpm, MIN_NODE, TSC } from "../../scripts/build_npm.ts";
import { runCommand } from "../_command.ts";

const REQUIRED = Deno.env.get("APALIS_NODE_TEST") === "required";
const NODE = Deno.env.get("APALIS_NODE") ?? "node";

/** The version of `NODE`, or why it cannot be used. */
function nodeProblem(): string | undefined {
  try {
    const output = new Deno.Command(NODE, { args: ["--version"], stdout: "piped", stderr: "null" })
      .outputSync();
    const version = new TextDecoder().decode(output.stdout).trim().replace(/^v/, "");
    const [major = 0, minor = 0] = version.split(".").map(Number);
    const [minMajor = 0, minMinor = 0] = MIN_NODE.split(".").map(Number);
    if (major < minMajor || (major === minMajor && minor < minMinor)) {
      return `${NODE} is Node ${version}, older than ${MIN_NODE}`;
    }
    return undefined;
  } catch {
    return `${NODE} is not installed`;
  }
}

const PROBLEM = nodeProblem();

const CONSUMER_JS = `
import { SqliteStorage, WorkerBuilder, openDatabase } from "@apalis/sqlite";
import { renderMetrics } from "@apalis/sqlite/board";
import { MsgPackCodec } from "@apalis/sqlite/msgpack";
import { PostgresStorage } from "@apalis/sqlite/postgres";
import { assertEnqueued, drainQueue, tempDatabase } from "@apalis/sqlite/testing";
import { existsSync } from "node:fs";
import { join } from "node:path";

const temp = await tempDatabase(); // Node 22 has no \`await using\`: close() in a finally
let output;
try {
  const emails = temp.storage("email");
  await emails.push({ to: "a@b.c" });
  await assertEnqueued(emails, { args: { to: "a@b.c" }, count: 1 });
  const sent = [];
  const drained = await drainQueue(emails, ({ to }) => void sent.push(to));

  const db = openDatabase(join(temp.dir, "packed.db"));
  SqliteStorage.setup(db);
  const packed = new SqliteStorage(db, "packed", { codec: MsgPackCodec });
  const id = await packed.push({ n: 21 });
  const worker = new WorkerBuilder("node-worker").backend(packed).handleSignals(false)
    .build(({ n }) => n * 2);
  await worker.runUntil(packed.waitFor([id]));
  const task = await packed.fetchById(id);
  const metrics = await renderMetrics(db);
  db.close();
  output = {
    sent,
    done: drained.done,
    result: task.lastResult,
    postgres: typeof PostgresStorage,
    metrics: metrics.includes('apalis_tasks{queue="packed",state="done"} 1'),
  };
} finally {
  await temp.close();
}
console.log(JSON.stringify({ ...output, removed: !existsSync(temp.path) }));
`;

const CONSUMER_TS = `
import { SqliteStorage, openDatabase, type TaskRecord } from "@apalis/sqlite";
import { drainQueue, tempDatabase } from "@apalis/sqlite/testing";
import { type MetricsSnapshot, renderMetrics } from "@apalis/sqlite/board";

export type Snapshot = MetricsSnapshot;
interface Email { to: string }
export async function check(): Promise<TaskRecord<Email> | undefined> {
  await using temp = await tempDatabase();
  const emails: SqliteStorage<Email> = temp.storage<Email>("email");
  // @ts-expect-error: the declarations are real types, not any
  await emails.push({ to: 1 });
  const result = await drainQueue(emails, ({ to }) => to.toUpperCase());
  const n: number = result.done;
  void n;
  void openDatabase;
  const metrics: string = await renderMetrics(temp.db);
  void metrics;
  return await emails.fetchById("x");
}
`;

Deno.test({
  name: "the npm package installs with npm and runs on Node 22 without flags, with its types",
  ignore: PROBLEM !== undefined && !REQUIRED,
  async fn() {
    if (PROBLEM !== undefined) {
      throw new Error(`Cannot test the package on Node: ${PROBLEM} (APALIS_NODE_TEST=required)`);
    }
    const dir = await Deno.makeTempDir({ prefix: "apalis_node_package_" });
    try {
      const packageDir = join(dir, "package");
      await buildNpm({ packageDir, e2eDir: null });
      const pack = await runCommand("npm", {
        args: ["pack", "--pack-destination", dir, packageDir],
        cwd: dir,
      });
      assert.equal(pack.code, 0, pack.stderr);
      const tarball = join(dir, pack.stdout.trim().split("\n").at(-1)!);
      const project = join(dir, "project");
      await Deno.mkdir(project);
      await Deno.writeTextFile(
        join(project, "package.json"),
        JSON.stringify({ name: "consumer", private: true, type: "module" }),
      );
      const install = await runCommand("npm", {
        args: ["install", "--no-audit", "--no-fund", "--prefer-offline", tarball],
        cwd: project,
      });
      assert.equal(install.code, 0, install.stdout + install.stderr);
      await Deno.writeTextFile(join(project, "consumer.js"), CONSUMER_JS);
      const run = await runCommand(NODE, { args: ["consumer.js"], cwd: project });
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.deepEqual(JSON.parse(run.stdout), {
        sent: ["a@b.c"],
        done: 1,
        result: 42,
        postgres: "function",
        metrics: true,
        removed: true,
      });
      // Node's own notice about node:sqlite, and nothing else.
      const warnings = run.stderr.split("\n").filter((line) =>
        line.trim() !== "" && !/ExperimentalWarning: SQLite|--trace-warnings/.test(line)
      );
      assert.deepEqual(warnings, []);

      await Deno.writeTextFile(join(project, "consumer.ts"), CONSUMER_TS);
      await Deno.writeTextFile(
        join(project, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            noEmit: true,
            strict: true,
            target: "ES2023",
            lib: ["ES2023", "ESNext.Disposable", "DOM"],
            module: "NodeNext",
            moduleResolution: "NodeNext",
            skipLibCheck: true,
            types: [],
          },
          files: ["consumer.ts"],
        }),
      );
      const tsc = await runCommand(NODE, {
        args: [TSC, "-p", "tsconfig.json"],
        cwd: project,
      });
      assert.equal(tsc.code, 0, tsc.stdout + tsc.stderr);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
