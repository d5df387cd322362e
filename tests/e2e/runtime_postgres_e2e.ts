// deno-lint-ignore-file no-console
/**
 * End-to-end check of the PostgreSQL backend under Bun or Node: `bun run
 * tests/e2e/runtime_postgres_e2e.ts`, or compiled for Node (`deno task build:npm`)
 * `node dist/node-e2e/tests/e2e/runtime_postgres_e2e.js`.
 * Starts a private PostgreSQL cluster (tests/pg_cluster.ts), then: setup, push and pushTx, an
 * in-process worker draining with retries, a Workflow, two worker processes draining
 * one queue exactly once, a LISTEN wake-up from another connection, and a PostgreSQL restart
 * mid-drain.
 *
 * Uses only `node:` APIs (no `Deno.*`), prints one line per check and ends with
 * `bun-e2e: N passed, 0 failed` (`node-e2e` on Node; exit 0), or the failure (exit 1). Without PostgreSQL it says so
 * and exits 0, unless `APALIS_POSTGRES_TEST=required` (CI): then it fails.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Task, WorkerBuilder, Workflow } from "../../mod.ts";
import { connectPostgres, POSTGRES_SCHEMA_VERSION, PostgresStorage } from "../../postgres.ts";
import { Cluster, POSTGRES_MISSING } from "../pg_cluster.ts";
import { waitUntil } from "../_wait.ts";
import { RUNTIME, RUNTIME_LABEL, scriptCommand } from "./_runtime.ts";
import { RUNS_DDL } from "../postgres/pg_worker.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const WORKER = new URL("../postgres/pg_worker.ts", import.meta.url);
const PREFIX = `${RUNTIME}-e2e`;

if (POSTGRES_MISSING !== undefined) {
  if (process.env.APALIS_POSTGRES_TEST === "required") {
    console.log(`FAIL ${POSTGRES_MISSING}`);
    console.log(`${PREFIX}: 0 passed, 1 failed`);
    process.exit(1);
  }
  console.log(`${PREFIX} (postgres): skipped: ${POSTGRES_MISSING}`);
  process.exit(0);
}

let passed = 0;
const children: ChildProcess[] = [];
const cluster = await Cluster.start({ durable: false });
process.on("exit", () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  cluster.destroySync();
});

async function check(name: string, fn: () => unknown): Promise<void> {
  try {
    await fn();
  } catch (error) {
    console.log(`FAIL ${name}`);
    console.log(error instanceof Error ? (error.stack ?? error.message) : String(error));
    console.log(`${PREFIX}: ${passed} passed, 1 failed`);
    process.exit(1);
  }
  passed++;
  console.log(`ok   ${name}`);
}

function spawnWorker(url: string, name: string, extra: string[]) {
  const [command, start] = scriptCommand(WORKER);
  const child = spawn(command, [...start, "--url", url, "--name", name, ...extra], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let stderr = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => stderr += chunk);
  child.stdout!.resume();
  return new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stderr }));
  });
}

await check(`runs under ${RUNTIME === "bun" ? "Bun" : "Node"}`, () => {
  assert.notEqual(RUNTIME, "deno", "run this script with Bun or (compiled) Node");
});

await cluster.psql("CREATE DATABASE runtime_e2e");
const url = cluster.url("runtime_e2e");
console.log(`${PREFIX} (postgres): runtime ${RUNTIME_LABEL}, ${url}`);
const pg = await connectPostgres(url, { max: 4 });

await check("PostgresStorage.setup() creates the schema, twice", async () => {
  assert.equal(await PostgresStorage.setup(pg), POSTGRES_SCHEMA_VERSION);
  assert.equal(await PostgresStorage.setup(pg), POSTGRES_SCHEMA_VERSION);
  await pg.sql.unsafe(RUNS_DDL);
});

await check("push, pushAll and pushTx (commit and rollback)", async () => {
  const storage = new PostgresStorage<string>(pg, "tx");
  await storage.push("a");
  await storage.pushAll([Task.builder("b").build(), Task.builder("c").build()]);
  await pg.sql.begin((tx) => storage.pushTx(tx, "d"));
  await pg.sql.begin(async (tx) => {
    await storage.pushTx(tx, "e");
    await tx.rollback();
  });
  assert.equal((await storage.stats()).pending, 4);
});

await check("an in-process worker drains a queue with retries", async () => {
  const storage = new PostgresStorage<number>(pg, "local");
  const ids = await storage.pushAll(Array.from({ length: 50 }, (_, n) => Task.builder(n).build()));
  const worker = new WorkerBuilder("bun-local")
    .backend(storage)
    .concurrency(4)
    .retry({ backoff: { initialMs: 5, factor: 1, jitter: 0 } })
    .handleSignals(false)
    .build((n, ctx) => {
      if (n % 10 === 0 && ctx.attempt === 1) throw new Error("once");
      return n;
    });
  const running = worker.run();
  const done = await storage.waitFor(ids, { timeoutMs: 20_000 });
  await worker.stop();
  await running;
  assert.ok(done.every((task) => task.status === "done"));
  assert.equal(done.filter((task) => task.attempts === 2).length, 5);
});

await check("a Workflow runs to done", async () => {
  const storage = new PostgresStorage<number>(pg, "flow");
  const flow = new Workflow<number>("bun-flow").andThen((n) => n + 1).andThen((n) => n * 10);
  const runId = await storage.pushStart(1);
  const worker = new WorkerBuilder("bun-flow").backend(storage).handleSignals(false).build(flow);
  const ended = storage.waitForRun(runId, { timeoutMs: 20_000 });
  await worker.runUntil(ended);
  assert.equal((await ended).result, 20);
});

await check("an idle worker wakes on a push from another connection (LISTEN)", async () => {
  const storage = new PostgresStorage<number>(pg, "wake");
  let started = 0;
  const worker = new WorkerBuilder("bun-wake")
    .backend(storage.forQueue<number>("wake"))
    .handleSignals(false)
    .build(() => void started++);
  const running = worker.run();
  await new Promise((resolve) => setTimeout(resolve, 500));
  const other = await connectPostgres(url, { max: 1 });
  const before = Date.now();
  await new PostgresStorage<number>(other, "wake").push(1);
  await waitUntil(() => started === 1, "the pushed task to start", 5_000);
  const latency = Date.now() - before;
  await other.close();
  await worker.stop();
  await running;
  console.log(`     push → start: ${latency} ms`);
});

await check(
  "two worker processes drain 1,000 tasks, each once, through a restart",
  async () => {
    const storage = new PostgresStorage<number>(pg, "procs");
    await storage.pushAll(Array.from({ length: 1000 }, (_, n) => Task.builder(n).build()));
    const exits = ["b1", "b2"].map((name) =>
      spawnWorker(url, name, [
        "--queue",
        "procs",
        "--concurrency",
        "4",
        "--sleep-ms",
        "2",
        "--drain",
      ])
    );
    await waitUntil(
      async () => (await storage.stats("procs").catch(() => ({ done: 0 }))).done >= 200,
      "a fifth of the tasks",
      60_000,
    );
    await cluster.restart();
    for (const exit of await Promise.all(exits)) assert.equal(exit.code, 0, exit.stderr);
    let stats = await storage.stats("procs").catch(() => undefined);
    await waitUntil(
      async () => {
        stats = await storage.stats("procs").catch(() => undefined);
        return stats !== undefined;
      },
      "the connection to come back",
      15_000,
    );
    assert.equal(stats!.done, 1000, JSON.stringify(stats));
    const [row] = await pg.sql<{ tasks: number }[]>`
    SELECT count(DISTINCT task_id) AS tasks FROM runs WHERE task_id IN
      (SELECT id FROM apalis_tasks WHERE queue = 'procs')`;
    assert.equal(row!.tasks, 1000);
  },
);

await pg.close();
console.log(`${PREFIX}: ${passed} passed, 0 failed`);
process.exit(0);
