/**
 * The codecs refuse, at the top level, values they would silently change: JSON stored
 * `undefined`, a function, a Symbol, NaN and ±Infinity as `null`, and a Map or a Set as `{}`;
 * MessagePack stores `undefined` as `null` and a Map or a Set as `{}` (it keeps NaN and
 * Infinity). A push of one writes nothing; a handler result of one fails the attempt.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type Codec,
  DagFlow,
  JsonCodec,
  SqliteStorage,
  Task,
  type TaskFlow,
  WorkerBuilder,
  Workflow,
} from "../../mod.ts";
import { MsgPackCodec } from "../../msgpack.ts";
import { tempDatabase } from "../_helpers.ts";

/** A value the JSON codec would change, and the words its error must contain. */
const JSON_REFUSED: [value: () => unknown, kind: string][] = [
  [() => undefined, "undefined"],
  [() => () => 1, "a function"],
  [() => Symbol("s"), "a Symbol"],
  [() => NaN, "NaN"],
  [() => Infinity, "Infinity"],
  [() => -Infinity, "-Infinity"],
  [() => new Map([["a", 1]]), "a Map"],
  [() => new Set([1]), "a Set"],
];

const MSGPACK_REFUSED: [value: () => unknown, kind: string][] = [
  [() => undefined, "undefined"],
  [() => () => 1, "a function"],
  [() => Symbol("s"), "a Symbol"],
  [() => new Map([["a", 1]]), "a Map"],
  [() => new Set([1]), "a Set"],
];

function refuses(codec: Codec, kind: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof TypeError, `a TypeError, got ${error}`);
    assert.ok(error.message.includes(kind), `'${kind}' in: ${error.message}`);
    const format = codec.name === "json" ? "JSON" : "MessagePack";
    assert.ok(error.message.includes(`${format} cannot hold`), error.message);
    return true;
  };
}

Deno.test("JsonCodec.encode() and encodeText() throw a TypeError naming the kind of value when JSON would silently change it", () => {
  for (const [value, kind] of JSON_REFUSED) {
    assert.throws(() => JsonCodec.encode(value()), refuses(JsonCodec, kind), kind);
    assert.throws(() => JsonCodec.encodeText!(value()), refuses(JsonCodec, kind), kind);
  }
  // Values JSON keeps are still encoded, nested ones by JSON's own rules.
  assert.equal(new TextDecoder().decode(JsonCodec.encode(null)), "null");
  assert.equal(JsonCodec.encodeText!({ a: 1, list: [1, 2] }), '{"a":1,"list":[1,2]}');
});

Deno.test("MsgPackCodec.encode() throws a TypeError naming the kind of value it would silently change, and keeps NaN and Infinity", () => {
  for (const [value, kind] of MSGPACK_REFUSED) {
    assert.throws(() => MsgPackCodec.encode(value()), refuses(MsgPackCodec, kind), kind);
  }
  for (const kept of [NaN, Infinity, -Infinity, null, 0]) {
    assert.ok(Object.is(MsgPackCodec.decode(MsgPackCodec.encode(kept)), kept), String(kept));
  }
});

Deno.test("SqliteStorage push methods refuse arguments the codec would silently change, naming the kind, and write nothing", async () => {
  await using tmp = await tempDatabase();
  for (
    const [codec, cases] of [[JsonCodec, JSON_REFUSED], [MsgPackCodec, MSGPACK_REFUSED]] as const
  ) {
    const storage = new SqliteStorage<unknown>(tmp.db, "q").withCodec(codec);
    for (const [value, kind] of cases) {
      const check = (error: unknown) => {
        refuses(codec, kind)(error);
        assert.match(
          (error as Error).message,
          new RegExp(`^Cannot push task to queue 'q': the ${codec.name} codec cannot encode`),
        );
        return true;
      };
      const label = `${codec.name}: ${kind}`;
      await assert.rejects(storage.push(value()), check, label);
      assert.throws(() => storage.pushSync(value()), check, label);
      await assert.rejects(storage.pushAll([new Task(1), new Task(value())]), check, label);
      await assert.rejects(storage.pushStart(value()), check, label);
    }
  }
  const tasks = tmp.db.get<{ n: number }>("SELECT count(*) AS n FROM apalis_tasks")!.n;
  assert.equal(tasks, 0, "nothing was written");
});

Deno.test("Worker.run() fails the attempt when the handler's result is a value JSON would silently change, and stores no result for undefined", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "results");
  const map = await storage.push("map", { maxAttempts: 1 });
  const nan = await storage.push("nan", { maxAttempts: 1 });
  const nothing = await storage.push("nothing", { maxAttempts: 1 });
  const worker = new WorkerBuilder("results-worker")
    .backend(storage)
    .concurrency(3)
    .handleSignals(false)
    .build((kind) => kind === "map" ? new Map([["a", 1]]) : kind === "nan" ? NaN : undefined);
  const running = worker.run();
  const [mapTask, nanTask, nothingTask] = await storage.waitFor([map, nan, nothing], {
    timeoutMs: 10_000,
  });
  await worker.stop();
  await running;
  for (const [task, kind] of [[mapTask!, "a Map"], [nanTask!, "NaN"]] as const) {
    assert.equal(task.status, "killed", kind);
    assert.equal(task.lastError?.name, "TypeError");
    assert.match(
      task.lastError?.message ?? "",
      /^Cannot store the task's result with the json codec/,
    );
    assert.ok(task.lastError?.message.includes(kind), task.lastError?.message);
  }
  assert.equal(nothingTask!.status, "done");
  assert.equal(nothingTask!.lastResult, undefined);
});

Deno.test("Workflow.filterMap() and DagFlow still pass undefined along: an undefined item, and a node that returns nothing to its one successor", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<unknown>(tmp.db, "undefined-flows");
  const flow = new Workflow<unknown[]>("items").filterMap((item) =>
    item === null ? "was undefined" : item
  );
  const dag = new DagFlow("nothing");
  const first = dag.addNode("first", () => undefined);
  dag.addNode("second", (input: unknown) => `got ${input}`).dependsOn(first);

  const flowRun = await storage.forQueue("items").pushStart([1, undefined, 2]);
  const flowWorker = new WorkerBuilder("items-worker").backend(storage.forQueue("items"))
    .handleSignals(false).build(flow as TaskFlow<unknown>);
  await flowWorker.runUntil(storage.waitForRun(flowRun, { timeoutMs: 10_000 }));
  const items = await storage.workflowRun(flowRun);
  assert.equal(items?.status, "done", JSON.stringify(items?.error));
  assert.deepEqual(items?.result, [1, "was undefined", 2]);

  const dagRun = await storage.pushStart(0);
  const dagWorker = new WorkerBuilder("dag-worker").backend(storage).handleSignals(false).build(
    dag,
  );
  await dagWorker.runUntil(storage.waitForRun(dagRun, { timeoutMs: 10_000 }));
  const nodes = await storage.workflowRun(dagRun);
  assert.equal(nodes?.status, "done", JSON.stringify(nodes?.error));
  assert.equal(nodes?.result, "got undefined");
});
