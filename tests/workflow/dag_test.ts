import assert from "node:assert/strict";
import {
  AbortError,
  Config,
  DagFlow,
  DagFlowError,
  type Database,
  type RetryOptions,
  type RunRecord,
  SqliteStorage,
  type StepRecord,
  type TaskContext,
  WorkerBuilder,
} from "../../mod.ts";
import { MsgPackCodec } from "../../msgpack.ts";
import { FakeClock, tempDatabase, waitUntil } from "../_helpers.ts";

const RUN_TIMEOUT_MS = 10_000;

/** Runs a worker built with `dag` until the run ends; returns the ended run. */
async function runToEnd(
  storage: SqliteStorage<unknown>,
  dag: DagFlow,
  runId: string,
  options: { concurrency?: number; retry?: RetryOptions; timeoutMs?: number } = {},
): Promise<RunRecord> {
  let builder = new WorkerBuilder("dag-worker")
    .backend(storage)
    .concurrency(options.concurrency ?? 4)
    .handleSignals(false);
  if (options.retry) builder = builder.retry(options.retry);
  const worker = builder.build(dag);
  const ended = storage.waitForRun(runId, { timeoutMs: options.timeoutMs ?? RUN_TIMEOUT_MS });
  await worker.runUntil(ended);
  return await ended;
}

/** The status of the task running `node` in a run, if it was enqueued. */
function nodeStatus(db: Database, runId: string, node: string): string | undefined {
  return db.get<{ status: string }>(
    `SELECT status FROM apalis_tasks WHERE run_id = ? AND json_extract(step, '$.node') = ?`,
    [runId, node],
  )?.status;
}

/** How many tasks of a run run `node`. */
function nodeTasks(db: Database, runId: string, node: string): number {
  return db.get<{ n: number }>(
    `SELECT count(*) AS n FROM apalis_tasks WHERE run_id = ? AND json_extract(step, '$.node') = ?`,
    [runId, node],
  )!.n;
}

/** Waits (inside a node) until the tasks of `nodes` are done in the database. */
function afterNodes(db: Database, ctx: TaskContext, nodes: string[]): Promise<void> {
  return waitUntil(
    () => nodes.every((node) => nodeStatus(db, ctx.runId!, node) === "done"),
    `nodes ${nodes.join(", ")} to be done`,
  );
}

/** The step's node names of a run's tasks, as listed (`null` for the run's entry task). */
function stepNodes(run: RunRecord): (string | null)[] {
  return run.steps.map((step) => (step.step as { node?: string } | null)?.node ?? null);
}

/** A run's tasks by node name (`(entry)` for the run's entry task). */
function stepsByNode(run: RunRecord): Map<string, StepRecord> {
  const steps = new Map<string, StepRecord>();
  for (const step of run.steps) {
    const node = (step.step as { node?: string } | null)?.node ?? "(entry)";
    assert.ok(!steps.has(node), `node ${node} has two tasks`);
    steps.set(node, step);
  }
  return steps;
}

Deno.test("DagFlow runs the seed's user-etl DAG to 249 and the collector gets [name, age, address] when name finishes last", async () => {
  await using tmp = await tempDatabase();
  const { db } = tmp;
  const storage = new SqliteStorage<unknown>(db, "user-etl").withCodec(MsgPackCodec);
  const finished: string[] = [];
  let collected: unknown;

  // The first dependency is the slowest: it returns only once the two others are done.
  async function getName(userId: number, ctx: TaskContext): Promise<string> {
    await afterNodes(db, ctx, ["getAge", "getAddress"]);
    finished.push("getName");
    return String(userId);
  }
  async function getAge(userId: number, ctx: TaskContext): Promise<number> {
    await afterNodes(db, ctx, ["getAddress"]);
    finished.push("getAge");
    return userId + 20;
  }
  function getAddress(userId: number): number {
    finished.push("getAddress");
    return userId + 100;
  }
  function collector(inputs: [string, number, number]): number {
    collected = inputs;
    const [name, age, address] = inputs;
    return parseInt(name, 10) + age + address;
  }

  const dag = new DagFlow("user-etl-workflow");
  const name = dag.node(getName);
  const age = dag.node(getAge);
  const address = dag.node(getAddress);
  dag.node(collector).dependsOn([name, age, address]);
  dag.validate();

  const runId = await storage.startFanOut([42, 43, 44]);
  const run = await runToEnd(storage, dag, runId, { concurrency: 3 });

  assert.equal(run.status, "done", JSON.stringify(run.error));
  assert.equal(run.result, 249);
  assert.equal(run.workflow, "user-etl-workflow");
  assert.deepEqual(finished, ["getAddress", "getAge", "getName"]);
  assert.deepEqual(collected, ["42", 63, 144]);
  // One entry task (the fan-out) and one task per node, each run once.
  const steps = stepsByNode(run);
  assert.deepEqual([...steps.keys()].sort(), [
    "(entry)",
    "collector",
    "getAddress",
    "getAge",
    "getName",
  ]);
  assert.ok(run.steps.every((step) => step.status === "done" && step.attempts === 1));
  assert.deepEqual(
    ["(entry)", "getName", "getAge", "getAddress", "collector"].map((node) =>
      steps.get(node)?.result
    ),
    [{ entries: 3 }, "42", 63, 144, 249],
  );
  // The collector's payload went through the storage's codec (MessagePack).
  const args = db.get<{ args: Uint8Array }>(
    `SELECT args FROM apalis_tasks WHERE run_id = ? AND json_extract(step, '$.node') = 'collector'`,
    [runId],
  )!.args;
  assert.deepEqual(MsgPackCodec.decode(args), ["42", 63, 144]);
});

Deno.test("DagFlow feeds each entry node its own input when startFanOut() starts a DAG with two entry nodes", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<unknown>(tmp.db, "two-entries");
  const dag = new DagFlow("two-entries");
  const double = dag.addNode("double", (n: number) => n * 2);
  const greet = dag.addNode("greet", (who: string) => `hello ${who}`);
  dag.addNode("join", ([d, g]: [number, string]) => `${g}: ${d}`).dependsOn([double, greet]);
  assert.deepEqual(dag.entryNodes, ["double", "greet"]);

  const runId = await storage.startFanOut([21, "ada"]);
  const run = await runToEnd(storage, dag, runId);

  assert.equal(run.status, "done", JSON.stringify(run.error));
  assert.equal(run.result, "hello ada: 42");
  assert.deepEqual([...stepsByNode(run).keys()].sort(), ["(entry)", "double", "greet", "join"]);
});

Deno.test("DagFlow runs a diamond's sink once with [b, c] when both branches of a finish", async () => {
  await using tmp = await tempDatabase();
  const { db } = tmp;
  const storage = new SqliteStorage<unknown>(db, "diamond");
  const inputs: unknown[] = [];
  const dag = new DagFlow("diamond");
  const a = dag.addNode("a", (n: number) => n + 1);
  // b finishes after c.
  const b = dag.addNode("b", async (n: number, ctx: TaskContext) => {
    await afterNodes(db, ctx, ["c"]);
    return `b${n}`;
  }).dependsOn(a);
  const c = dag.addNode("c", (n: number) => `c${n}`).dependsOn(a);
  dag.addNode("d", (input: [string, string]) => {
    inputs.push(input);
    return input.join("+");
  }).dependsOn([b, c]);

  const runId = await storage.pushStart(1);
  const run = await runToEnd(storage, dag, runId);

  assert.equal(run.status, "done", JSON.stringify(run.error));
  assert.equal(run.result, "b2+c2");
  assert.deepEqual(inputs, [["b2", "c2"]]);
  assert.equal(nodeTasks(db, runId, "d"), 1);
  // A single entry node takes the run's first task itself.
  const steps = stepsByNode(run);
  assert.deepEqual([...steps.keys()].sort(), ["(entry)", "b", "c", "d"]);
  assert.equal(steps.get("(entry)")!.result, 2);
});

Deno.test("DagFlow enqueues a fan-in of three once, with the inputs in dependsOn order", async () => {
  await using tmp = await tempDatabase();
  const { db } = tmp;
  const storage = new SqliteStorage<unknown>(db, "fan-in");
  let calls = 0;
  const dag = new DagFlow("fan-in-3");
  const source = dag.addNode("source", (n: number) => n);
  const x = dag.addNode("x", async (n: number, ctx: TaskContext) => {
    await afterNodes(db, ctx, ["y", "z"]);
    return n * 100;
  }).dependsOn(source);
  const y = dag.addNode("y", async (n: number, ctx: TaskContext) => {
    await afterNodes(db, ctx, ["z"]);
    return n * 10;
  }).dependsOn(source);
  const z = dag.addNode("z", (n: number) => n).dependsOn(source);
  dag.addNode("sum", (parts: number[]) => {
    calls++;
    return parts;
  }).dependsOn([x, y, z]);

  const runId = await storage.pushStart(3);
  const run = await runToEnd(storage, dag, runId);

  assert.equal(run.status, "done", JSON.stringify(run.error));
  assert.deepEqual(run.result, [300, 30, 3]);
  assert.equal(calls, 1);
  assert.equal(nodeTasks(db, runId, "sum"), 1);
});

Deno.test("DagFlow passes each node's output to the next when the DAG is a chain", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<unknown>(tmp.db, "chain");
  const seen: unknown[] = [];
  const dag = new DagFlow("chain");
  const first = dag.addNode("first", (n: number) => {
    seen.push(n);
    return n + 1;
  });
  const second = dag.addNode("second", (n: number) => {
    seen.push(n);
    return { n: n * 2 };
  }).dependsOn(first);
  dag.addNode("third", (value: { n: number }) => {
    seen.push(value);
    return `n=${value.n}`;
  }).dependsOn(second);

  const runId = await storage.pushStart(1);
  const run = await runToEnd(storage, dag, runId);

  assert.equal(run.status, "done", JSON.stringify(run.error));
  assert.equal(run.result, "n=4");
  assert.deepEqual(seen, [1, 2, { n: 4 }]);
  assert.deepEqual([...stepsByNode(run).keys()].sort(), ["(entry)", "second", "third"]);
});

Deno.test("DagFlow ends the run with both sinks' outputs in node order when the DAG has two sinks", async () => {
  await using tmp = await tempDatabase();
  const { db } = tmp;
  const storage = new SqliteStorage<unknown>(db, "two-sinks");
  const dag = new DagFlow("two-sinks");
  const root = dag.addNode("root", (n: number) => n);
  // The first sink (in node order) finishes last.
  dag.addNode("left", async (n: number, ctx: TaskContext) => {
    await afterNodes(db, ctx, ["right"]);
    return `left ${n}`;
  }).dependsOn(root);
  dag.addNode("right", (n: number) => `right ${n}`).dependsOn(root);

  const runId = await storage.pushStart(7);
  const run = await runToEnd(storage, dag, runId);

  assert.equal(run.status, "done", JSON.stringify(run.error));
  assert.deepEqual(run.result, ["left 7", "right 7"]);
});

Deno.test("SqliteStorage.workflowRun() lists a DAG's steps in the order they were enqueued when they are enqueued in the same millisecond", async () => {
  await using tmp = await tempDatabase();
  // A clock that never moves: every task of the run is enqueued in the same millisecond.
  const storage = new SqliteStorage<unknown>(tmp.db, "same-ms", { clock: new FakeClock() });
  const dag = new DagFlow("same-ms");
  const zulu = dag.addNode("zulu", (n: number) => n);
  const yankee = dag.addNode("yankee", (n: number) => n);
  const xray = dag.addNode("xray", ([z, y]: number[]) => z! + y!).dependsOn([zulu, yankee]);
  dag.addNode("whiskey", (n: number) => n * 2).dependsOn(xray);

  const runId = await storage.startFanOut([1, 2]);
  const run = await runToEnd(storage, dag, runId);

  assert.equal(run.status, "done", JSON.stringify(run.error));
  assert.equal(run.result, 6);
  assert.deepEqual(stepNodes(run), [null, "zulu", "yankee", "xray", "whiskey"]);
});

Deno.test("DagFlow.validate() throws a DagFlowError naming the cycle when nodes depend on each other in a loop", () => {
  const dag = new DagFlow("loop");
  const a = dag.addNode("a", (x: unknown) => x);
  const b = dag.addNode("b", (x: unknown) => x).dependsOn(a);
  const c = dag.addNode("c", (x: unknown) => x).dependsOn(b);
  a.dependsOn(c);
  assert.throws(() => dag.validate(), (error: unknown) => {
    assert.ok(error instanceof DagFlowError);
    assert.equal(error.name, "DagFlowError");
    assert.match(error.message, /DagFlow 'loop' is invalid: it has a cycle: a -> c -> b -> a/);
    return true;
  });
  // A worker cannot be built with it either.
  const storage = { queue: "loop" } as unknown as SqliteStorage<unknown>;
  assert.throws(() => dag.toHandler(storage), DagFlowError);
});

Deno.test("DagFlow.validate() throws a DagFlowError when a node depends on itself", () => {
  const dag = new DagFlow("self");
  const a = dag.addNode("a", (x: unknown) => x);
  a.dependsOn(a);
  assert.throws(() => dag.validate(), {
    name: "DagFlowError",
    message: /cycle: a -> a/,
  });
});

Deno.test("DagFlow.validate() throws a DagFlowError when the DAG has no nodes", () => {
  assert.throws(() => new DagFlow("empty").validate(), {
    name: "DagFlowError",
    message: /DagFlow 'empty' is invalid: it has no nodes/,
  });
});

Deno.test("NodeHandle.dependsOn() throws a DagFlowError when the dependency is a node of another DagFlow", () => {
  const dag = new DagFlow("mine");
  const other = new DagFlow("theirs");
  dag.addNode("shared", (x: unknown) => x);
  const sink = dag.addNode("sink", (x: unknown) => x);
  // Same name as a node of `dag`: the handle, not the name, decides.
  const foreign = other.addNode("shared", (x: unknown) => x);
  assert.throws(() => sink.dependsOn(foreign), (error: unknown) => {
    assert.ok(error instanceof DagFlowError);
    assert.match(
      error.message,
      /DagFlow 'mine' is invalid: node 'sink' depends on a node of another DagFlow \(shared\)/,
    );
    return true;
  });
  assert.throws(() => sink.dependsOn([foreign]), DagFlowError);
  dag.validate(); // nothing was recorded
  assert.deepEqual(dag.entryNodes, ["shared", "sink"]);
});

Deno.test("NodeHandle.dependsOn() throws a DagFlowError when it names the same node twice", () => {
  const dag = new DagFlow("twice");
  const a = dag.addNode("a", (x: unknown) => x);
  const b = dag.addNode("b", (x: unknown) => x);
  assert.throws(() => b.dependsOn([a, a]), {
    name: "DagFlowError",
    message: /node 'b' depends on 'a' twice/,
  });
  const c = dag.addNode("c", (x: unknown) => x).dependsOn(a);
  assert.throws(() => c.dependsOn(a), {
    name: "DagFlowError",
    message: /node 'c' depends on 'a' twice/,
  });
});

Deno.test("DagFlow.addNode() throws a DagFlowError when the name is taken", () => {
  const dag = new DagFlow("dupes");
  dag.addNode("fetch", (x: unknown) => x);
  assert.throws(() => dag.addNode("fetch", (x: unknown) => x), {
    name: "DagFlowError",
    message: /DagFlow 'dupes' is invalid: two nodes are named 'fetch'/,
  });
  assert.throws(() => dag.addNode("", (x: unknown) => x), TypeError);
  assert.throws(
    () => dag.addNode("not-a-function", 42 as unknown as (x: unknown) => unknown),
    TypeError,
  );
});

Deno.test("DagFlow.node() names nodes after their function and numbers repeats and anonymous ones", () => {
  const dag = new DagFlow("names");
  function fetchUser(id: number) {
    return id;
  }
  const names = [
    dag.node(fetchUser).name,
    dag.node(fetchUser).name,
    dag.node((x: unknown) => x).name,
    dag.node((x: unknown) => x).name,
    dag.node(fetchUser).name,
  ];
  assert.deepEqual(names, ["fetchUser", "fetchUser-2", "node-3", "node-4", "fetchUser-3"]);
  // An anonymous node never takes a name already given by hand.
  const other = new DagFlow("taken");
  other.addNode("node-2", (x: unknown) => x);
  const anonymous = other.node((x: unknown) => x);
  assert.notEqual(anonymous.name, "node-2");
  assert.equal(new Set(other.entryNodes).size, 2);
});

Deno.test("DagFlow.toDot() draws a diamond as Graphviz DOT", () => {
  const dag = new DagFlow("diamond");
  const a = dag.addNode("a", (x: unknown) => x);
  const b = dag.addNode("b", (x: unknown) => x).dependsOn(a);
  const c = dag.addNode("c", (x: unknown) => x).dependsOn(a);
  dag.addNode("d", (x: unknown) => x).dependsOn([b, c]);
  assert.equal(
    dag.toDot(),
    [
      `digraph "diamond" {`,
      `  "a";`,
      `  "b";`,
      `  "a" -> "b";`,
      `  "c";`,
      `  "a" -> "c";`,
      `  "d";`,
      `  "b" -> "d";`,
      `  "c" -> "d";`,
      `}`,
      ``,
    ].join("\n"),
  );
});

Deno.test("SqliteStorage.startFanOut() fails the run with a clear message when the inputs do not match the entry nodes", async () => {
  await using tmp = await tempDatabase();
  const { db } = tmp;
  const storage = new SqliteStorage<unknown>(db, "mismatch");
  const dag = new DagFlow("pair");
  const left = dag.addNode("left", (n: number) => n);
  const right = dag.addNode("right", (n: number) => n);
  dag.addNode("both", (pair: number[]) => pair).dependsOn([left, right]);

  const runId = await storage.startFanOut([1]);
  const run = await runToEnd(storage, dag, runId);

  assert.equal(run.status, "failed");
  assert.equal(run.error?.name, "AbortError");
  assert.equal(
    run.error?.message,
    "Cannot start DagFlow 'pair': it has 2 entry nodes (left, right) but the run's input has 1 items (use storage.startFanOut with one input per entry node)",
  );
  // The entry task was killed on its first attempt; no node was enqueued.
  assert.equal(run.steps.length, 1);
  assert.deepEqual(
    { status: run.steps[0]!.status, attempts: run.steps[0]!.attempts },
    { status: "killed", attempts: 1 },
  );

  // pushStart() of a non-array on a DAG with several entry nodes fails the same way.
  const other = await storage.pushStart("not a list");
  const otherRun = await runToEnd(storage, dag, other);
  assert.equal(otherRun.status, "failed");
  assert.match(otherRun.error?.message ?? "", /the run's input is not an array/);

  // And startFanOut() refuses a non-array at once.
  await assert.rejects(
    async () => await storage.startFanOut(42 as unknown as unknown[]),
    TypeError,
  );
});

Deno.test("DagFlow fails the run and never enqueues downstream nodes when a node throws AbortError", async () => {
  await using tmp = await tempDatabase();
  const { db } = tmp;
  const storage = new SqliteStorage<unknown>(db, "abort");
  let downstream = 0;
  const dag = new DagFlow("abort");
  // `slow` finishes only after the run has failed: its successor must not be enqueued.
  const slow = dag.addNode("slow", async (n: number, ctx: TaskContext) => {
    await waitUntil(
      () =>
        db.get<{ s: string }>("SELECT status AS s FROM apalis_runs WHERE id = ?", [ctx.runId!])
          ?.s === "failed",
      "the run to fail",
    );
    return n;
  });
  const bad = dag.addNode("bad", () => {
    throw new AbortError("the input is poison");
  });
  const afterSlow = dag.addNode("afterSlow", (n: number) => {
    downstream++;
    return n;
  }).dependsOn(slow);
  dag.addNode("end", (x: unknown) => {
    downstream++;
    return x;
  }).dependsOn([afterSlow, bad]);

  const runId = await storage.startFanOut([1, 2]);
  const failed = await runToEnd(storage, dag, runId);

  assert.equal(failed.status, "failed");
  assert.deepEqual(
    { name: failed.error?.name, message: failed.error?.message },
    { name: "AbortError", message: "the input is poison" },
  );
  // The worker stopped gracefully: `slow` finished, and nothing followed it.
  const run = (await storage.workflowRun(runId))!;
  assert.equal(run.status, "failed");
  assert.deepEqual(
    run.steps.map((step) => [(step.step as { node?: string } | null)?.node ?? null, step.status]),
    [[null, "done"], ["slow", "done"], ["bad", "killed"]],
  );
  assert.equal(run.steps[2]!.attempts, 1);
  assert.equal(downstream, 0);
});

Deno.test("DagFlow retries a failing node with the worker's backoff and the run ends done", async () => {
  await using tmp = await tempDatabase();
  const { db } = tmp;
  const storage = new SqliteStorage<unknown>(db, "flaky");
  const dag = new DagFlow("flaky");
  const first = dag.addNode("first", (n: number) => n);
  dag.addNode("flaky", (n: number, ctx: TaskContext) => {
    if (ctx.attempt === 1) throw new Error("transient");
    return n * 10;
  }).dependsOn(first);

  const runId = await storage.pushStart(4);
  const run = await runToEnd(storage, dag, runId, {
    retry: { backoff: { initialMs: 10, factor: 1, jitter: 0 } },
  });

  assert.equal(run.status, "done", JSON.stringify(run.error));
  assert.equal(run.result, 40);
  const flaky = run.steps.find((step) => (step.step as { node?: string })?.node === "flaky")!;
  assert.deepEqual({ status: flaky.status, attempts: flaky.attempts }, {
    status: "done",
    attempts: 2,
  });
  assert.equal(nodeTasks(db, runId, "flaky"), 1);
});

Deno.test("DagFlow retries a later node with the backoff given to pushStart() when the worker's backoff is long", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<unknown>(tmp.db, "run-backoff");
  const dag = new DagFlow("run-backoff");
  const first = dag.addNode("first", (n: number) => n);
  dag.addNode("second", (n: number, ctx: TaskContext) => {
    if (ctx.attempt === 1) throw new Error("transient");
    return n + 1;
  }).dependsOn(first);

  // The run's steps should retry after 10 ms (persisted with the run), not after the worker's
  // minute.
  const runId = await storage.pushStart(1, { backoff: { initialMs: 10, factor: 1, jitter: 0 } });
  const run = await runToEnd(storage, dag, runId, {
    retry: { backoff: { initialMs: 60_000, factor: 1, jitter: 0 } },
    timeoutMs: 2_000,
  }).catch((error) => error);

  assert.ok(
    !(run instanceof Error),
    `the second step did not retry with the run's backoff: ${run}`,
  );
  assert.equal(run.status, "done");
  assert.equal(run.result, 2);
});

Deno.test("SqliteStorage.retry() revives a failed DAG run and the fan-in still runs when its other dependency finished meanwhile", async () => {
  await using tmp = await tempDatabase();
  const { db } = tmp;
  const storage = new SqliteStorage<unknown>(db, "revive");
  let badCalls = 0;
  const dag = new DagFlow("revive");
  const bad = dag.addNode("bad", (n: number) => {
    badCalls++;
    if (badCalls === 1) throw new AbortError("not yet");
    return n;
  });
  // `good` finishes while the run is failed.
  const good = dag.addNode("good", async (n: number, ctx: TaskContext) => {
    await waitUntil(
      () =>
        db.get<{ s: string }>("SELECT status AS s FROM apalis_runs WHERE id = ?", [ctx.runId!])
          ?.s === "failed",
      "the run to fail",
    );
    return n;
  });
  dag.addNode("sum", ([a, b]: [number, number]) => a + b).dependsOn([bad, good]);

  const worker = new WorkerBuilder("revive-worker").backend(storage).concurrency(2)
    .handleSignals(false).build(dag);
  const running = worker.run();
  try {
    const runId = await storage.startFanOut([1, 2]);
    const failed = await storage.waitForRun(runId, { timeoutMs: RUN_TIMEOUT_MS });
    assert.equal(failed.status, "failed");
    await waitUntil(() => nodeStatus(db, runId, "good") === "done", "good to finish");
    const badTask = failed.steps.find((step) => (step.step as { node?: string })?.node === "bad")!;
    await storage.retry(badTask.taskId);
    assert.equal((await storage.workflowRun(runId))?.status, "running");
    const run = await storage.waitForRun(runId, { timeoutMs: 3_000 }).catch((error) => error);
    assert.ok(
      !(run instanceof Error),
      `the revived run did not end: ${run}; tasks: ${
        JSON.stringify((await storage.workflowRun(runId))?.steps.map((s) => [s.step, s.status]))
      }`,
    );
    assert.equal(run.status, "done");
    assert.equal(run.result, 3);
    assert.equal(nodeTasks(db, runId, "sum"), 1);
    assert.equal(nodeTasks(db, runId, "good"), 1);
  } finally {
    await worker.stop();
    await running;
  }
});

Deno.test("DagFlow fails the run when orphan rescue kills a node that was running on its last attempt", async () => {
  await using tmp = await tempDatabase();
  const { db } = tmp;
  const storage = new SqliteStorage<unknown>(db, new Config("orphan").setKeepAlive(50));
  let calls = 0;
  const dag = new DagFlow("orphan");
  const first = dag.addNode("first", (n: number) => {
    calls++;
    return n;
  });
  dag.addNode("second", (n: number) => {
    calls++;
    return n;
  }).dependsOn(first);

  const runId = await storage.pushStart(1, { maxAttempts: 1 });
  // A worker that is not registered (it died) holds the first step, running its only attempt.
  const started = db.run(
    `UPDATE apalis_tasks SET status = 'running', attempts = 1, lock_by = 'ghost', lock_at = ?
     WHERE run_id = ?`,
    [Date.now(), runId],
  );
  assert.equal(started.changes, 1);
  const run = await runToEnd(storage, dag, runId);

  assert.equal(run.status, "failed");
  assert.equal(run.error?.name, "WorkerLostError");
  assert.deepEqual(run.steps.map((step) => step.status), ["killed"]);
  assert.equal(calls, 0);
});

Deno.test("SqliteStorage.pushStart() runs a single-entry DAG with its input as it is", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<unknown>(tmp.db, "single");
  const dag = new DagFlow("single");
  let input: unknown;
  dag.addNode("only", (value: unknown) => {
    input = value;
    return { got: value };
  });

  const runId = await storage.pushStart([1, 2, 3]);
  const run = await runToEnd(storage, dag, runId);

  assert.equal(run.status, "done", JSON.stringify(run.error));
  assert.deepEqual(input, [1, 2, 3]);
  assert.deepEqual(run.result, { got: [1, 2, 3] });
  assert.equal(run.steps.length, 1);
});
