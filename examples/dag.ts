// deno-lint-ignore-file no-console
/**
 * The seed's "DAG Workflow": a user ETL pipeline. Three entry nodes fetch a user's name, age
 * and address concurrently (each its own persisted task), then a collector that depends on all
 * three receives their results, in `dependsOn` order, and adds them up. The collector is
 * enqueued, with its inputs, by the transaction that completes its last dependency: it never
 * waits in a worker slot.
 *
 * Payloads and results are stored as MessagePack. The worker prints every event and stops when
 * the run ends (the seed's collector stops the worker itself); then the result is printed:
 * 42 + (43 + 20) + (44 + 100) = 249.
 *
 * Run with `deno run -A examples/dag.ts` or `bun run examples/dag.ts`.
 *
 * @module
 */
import { DagFlow, openDatabase, SqliteStorage, WorkerBuilder, type WorkerEvent } from "../mod.ts";
import { MsgPackCodec } from "../msgpack.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function getName(userId: number): Promise<string> {
  return String(userId);
}

async function getAge(userId: number): Promise<number> {
  await sleep(800);
  return userId + 20;
}

async function getAddress(userId: number): Promise<number> {
  await sleep(500);
  return userId + 100;
}

async function collector([name, age, address]: [string, number, number]): Promise<number> {
  const parsed = parseInt(name, 10);
  if (Number.isNaN(parsed)) throw new Error(`'${name}' is not a number`);
  return parsed + age + address;
}

/** One line per event (the seed prints them with `{:?}`). */
function describe(event: WorkerEvent): string {
  switch (event.type) {
    case "success":
      return `success: task ${event.task.taskId} returned ${JSON.stringify(event.result)}`;
    case "error": {
      const message = event.error instanceof Error ? event.error.message : String(event.error);
      const where = event.task ? `task ${event.task.taskId}` : "worker";
      return `error: ${where} ${event.status ?? "failed"}: ${message}`;
    }
    case "heartbeat":
      return `heartbeat (rescued ${event.rescued})`;
    case "exit":
      return event.error === undefined ? "exit" : `exit: ${event.error}`;
    default:
      return event.type;
  }
}

const db = openDatabase(":memory:");
SqliteStorage.setup(db);
const backend = new SqliteStorage<unknown>(db, "user-etl").withCodec(MsgPackCodec);
// One input per entry node, in the order the nodes are added below.
const runId = await backend.startFanOut([42, 43, 44]);

const dagFlow = new DagFlow("user-etl-workflow");
const name = dagFlow.node(getName);
const age = dagFlow.node(getAge);
const address = dagFlow.node(getAddress);
dagFlow
  .node(collector)
  .dependsOn([name, age, address]); // order matters: the collector receives [name, age, address]

dagFlow.validate(); // throws a DagFlowError on a cycle or a missing node

const worker = new WorkerBuilder("rango-tango")
  .backend(backend)
  .concurrency(3) // the three entry nodes run at the same time
  .onEvent((ctx, event) => {
    console.log(`${describe(event)},`);
    if (event.type === "error") ctx.stop();
  })
  .build(dagFlow);

// Stops gracefully once the run has ended (done, or failed by a killed node).
await worker.runUntil(backend.waitForRun(runId));

const run = await backend.workflowRun<number>(runId);
console.log(`run ${runId}: ${run?.status}`);
for (const step of run?.steps ?? []) {
  console.log(`  ${JSON.stringify(step.step)}: ${step.status} → ${JSON.stringify(step.result)}`);
}
console.log(`result: ${run?.result}`);
db.close();
if (run?.status !== "done") throw new Error(`the run ended ${run?.status}: ${run?.error?.message}`);
