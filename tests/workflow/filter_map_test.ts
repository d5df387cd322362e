import assert from "node:assert/strict";
import {
  AbortError,
  type RetryOptions,
  type RunRecord,
  SqliteStorage,
  type StepRecord,
  WorkerBuilder,
  Workflow,
} from "../../mod.ts";
import { FakeClock, tempDatabase, waitUntil } from "../_helpers.ts";

const RUN_TIMEOUT_MS = 10_000;

/** Runs a worker built with `flow` until the run ends; returns the ended run. */
async function runToEnd<I>(
  storage: SqliteStorage<I>,
  flow: Workflow<I, unknown>,
  runId: string,
  options: { concurrency?: number; retry?: RetryOptions } = {},
): Promise<RunRecord> {
  let builder = new WorkerBuilder("filter-map-worker")
    .backend(storage)
    .concurrency(options.concurrency ?? 4)
    .handleSignals(false);
  if (options.retry) builder = builder.retry(options.retry);
  const worker = builder.build(flow);
  const ended = storage.waitForRun(runId, { timeoutMs: RUN_TIMEOUT_MS });
  await worker.runUntil(ended);
  return await ended;
}

interface ItemStep {
  i: number;
  item?: 1;
  slot?: number;
  collect?: string;
}

/** The run's filterMap item tasks, by slot. */
function items(run: RunRecord): StepRecord[] {
  return run.steps
    .filter((step) => (step.step as ItemStep | null)?.item === 1)
    .sort((a, b) => (a.step as ItemStep).slot! - (b.step as ItemStep).slot!);
}

Deno.test("Workflow.filterMap() collects results in input order when items finish in reverse order", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number[]>(tmp.db, "order");
  const returned: number[] = [];
  const input = [5, 1, 4, 2, 3];
  const flow = new Workflow<number[]>("order")
    .filterMap(async (n: number) => {
      // Each item returns only after the item to its right has: the last one goes first.
      const right = input[input.indexOf(n) + 1];
      if (right !== undefined) {
        await waitUntil(() => returned.includes(right), `item ${right} to return`);
      }
      returned.push(n);
      return n * 10;
    });

  const runId = await storage.pushStart(input);
  const run = await runToEnd(storage, flow, runId, { concurrency: input.length });

  assert.equal(run.status, "done", JSON.stringify(run.error));
  assert.deepEqual(returned, [3, 2, 4, 1, 5]);
  assert.deepEqual(run.result, [50, 10, 40, 20, 30]);
  assert.equal(items(run).length, input.length);
});

Deno.test("Workflow.filterMap() leaves out undefined and null results and keeps other falsy ones", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<unknown[]>(tmp.db, "filter");
  const flow = new Workflow<unknown[]>("filter")
    .filterMap((value: unknown) => {
      if (value === "skip") return undefined;
      if (value === "nothing") return null;
      return value;
    });

  const runId = await storage.pushStart([1, "skip", 0, "nothing", false, "", "kept"]);
  const run = await runToEnd(storage, flow, runId);

  assert.equal(run.status, "done", JSON.stringify(run.error));
  assert.deepEqual(run.result, [1, 0, false, "", "kept"]);
  // Filtered items are done, not failed.
  assert.ok(items(run).every((step) => step.status === "done"));
});

Deno.test("Workflow.filterMap() fails the run with a FilterMapError naming the item when an item runs out of attempts", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number[]>(tmp.db, "fail");
  let next = 0;
  const flow = new Workflow<number[]>("fail")
    .filterMap((n: number) => {
      if (n === 30) throw new Error(`no stock for ${n}`);
      return n;
    })
    .andThen((values) => {
      next++;
      return values;
    });

  const runId = await storage.pushStart([10, 20, 30, 40], { maxAttempts: 2 });
  const run = await runToEnd(storage, flow, runId, {
    retry: { backoff: { initialMs: 5, factor: 1, jitter: 0 } },
  });

  assert.equal(run.status, "failed");
  assert.equal(run.error?.name, "FilterMapError");
  assert.match(run.error?.message ?? "", /1 item\(s\) failed: #2: no stock for 30$/);
  const failed = items(run)[2]!;
  assert.deepEqual({ status: failed.status, attempts: failed.attempts }, {
    status: "killed",
    attempts: 2,
  });
  // The collector was killed at once (no retry can fix it) and nothing followed.
  const collector = run.steps.find((step) =>
    (step.step as ItemStep | null)?.collect !== undefined
  )!;
  assert.deepEqual({ status: collector.status, attempts: collector.attempts }, {
    status: "killed",
    attempts: 1,
  });
  assert.equal(next, 0);
  assert.ok(run.steps.every((step) => ((step.step as ItemStep | null)?.i ?? 0) === 0));
});

Deno.test("Workflow.filterMap() names every failed item when several fail", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string[]>(tmp.db, "fail-many");
  const flow = new Workflow<string[]>("fail-many")
    .filterMap((sku: string) => {
      if (sku.startsWith("bad")) throw new AbortError(`${sku} is discontinued`);
      return sku;
    });

  const runId = await storage.pushStart(["ok", "bad-1", "ok-2", "bad-3"]);
  const run = await runToEnd(storage, flow, runId);

  assert.equal(run.status, "failed");
  assert.equal(
    run.error?.message,
    "filterMap in step 0 of workflow 'fail-many': 2 item(s) failed: #1: bad-1 is discontinued; #3: bad-3 is discontinued",
  );
});

Deno.test("Workflow.filterMap() skips a failed item and the run goes on when failedItems is skip", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number[]>(tmp.db, "skip");
  const flow = new Workflow<number[]>("skip")
    .filterMap((n: number) => {
      if (n === 2) throw new AbortError("two is unlucky");
      return n * n;
    }, { failedItems: "skip" })
    .andThen((squares) => ({ squares }));

  const runId = await storage.pushStart([1, 2, 3]);
  const run = await runToEnd(storage, flow, runId);

  assert.equal(run.status, "done", JSON.stringify(run.error));
  assert.deepEqual(run.result, { squares: [1, 9] });
  const killed = items(run)[1]!;
  assert.deepEqual(
    { status: killed.status, name: killed.error?.name, message: killed.error?.message },
    { status: "killed", name: "AbortError", message: "two is unlucky" },
  );
});

Deno.test("Workflow.filterMap() goes straight to the next step with [] when the input is empty", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number[]>(tmp.db, "empty");
  let calls = 0;
  const flow = new Workflow<number[]>("empty")
    .filterMap((n: number) => {
      calls++;
      return n;
    })
    .andThen((values) => ({ values }));

  const runId = await storage.pushStart([]);
  const run = await runToEnd(storage, flow, runId);

  assert.equal(run.status, "done", JSON.stringify(run.error));
  assert.deepEqual(run.result, { values: [] });
  assert.equal(calls, 0);
  assert.deepEqual(run.steps.map((step) => step.step), [null, { i: 1 }]);
  assert.deepEqual(run.steps[1]!.result, { values: [] });
});

Deno.test("Workflow.filterMap() runs items in parallel when the worker's concurrency allows", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number[]>(tmp.db, "parallel");
  let active = 0;
  let maxActive = 0;
  const flow = new Workflow<number[]>("parallel")
    .filterMap(async (n: number) => {
      active++;
      maxActive = Math.max(maxActive, active);
      try {
        // Every item waits for a second one to be running beside it.
        await waitUntil(() => maxActive > 1, "a second item to run at the same time", 5_000);
        return n;
      } finally {
        active--;
      }
    });

  const runId = await storage.pushStart([1, 2, 3, 4, 5, 6, 7, 8]);
  const run = await runToEnd(storage, flow, runId, { concurrency: 4 });

  assert.equal(run.status, "done", JSON.stringify(run.error));
  assert.deepEqual(run.result, [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.ok(maxActive > 1, `max concurrent items: ${maxActive}`);
  assert.ok(maxActive <= 4, `max concurrent items: ${maxActive}`);
});

Deno.test("Workflow.filterMap() still runs the collector when an item is killed by hand", async () => {
  await using tmp = await tempDatabase();
  const { db } = tmp;
  const storage = new SqliteStorage<string[]>(db, "kill");
  const taskIds = new Map<string, string>();
  const flow = new Workflow<string[]>("kill")
    .filterMap(async (name: string, ctx) => {
      taskIds.set(name, ctx.taskId);
      if (name === "stuck") {
        // Hangs until someone kills its task; its late ack is then fenced off.
        await waitUntil(
          () =>
            db.get<{ s: string }>("SELECT status AS s FROM apalis_tasks WHERE id = ?", [ctx.taskId])
              ?.s === "killed",
          "the stuck item to be killed",
        );
      }
      return name.toUpperCase();
    }, { failedItems: "skip" })
    .andThen((names) => names.join(","));

  const runId = await storage.pushStart(["a", "stuck", "b"]);
  const worker = new WorkerBuilder("kill-worker").backend(storage).concurrency(4)
    .handleSignals(false).build(flow);
  const running = worker.run();
  try {
    await waitUntil(() => taskIds.has("stuck"), "the stuck item to start");
    await storage.kill(taskIds.get("stuck")!, "operator gave up");
    const run = await storage.waitForRun(runId, { timeoutMs: RUN_TIMEOUT_MS });
    assert.equal(run.status, "done", JSON.stringify(run.error));
    assert.equal(run.result, "A,B");
    const stuck = items(run)[1]!;
    assert.deepEqual({ status: stuck.status, message: stuck.error?.message }, {
      status: "killed",
      message: "operator gave up",
    });
  } finally {
    await worker.stop();
    await running;
  }
});

Deno.test("Workflow.filterMap() fails the run naming the item when an item is killed by hand with the default options", async () => {
  await using tmp = await tempDatabase();
  const { db } = tmp;
  const storage = new SqliteStorage<string[]>(db, "kill-fail");
  const taskIds = new Map<string, string>();
  const flow = new Workflow<string[]>("kill-fail")
    .filterMap(async (name: string, ctx) => {
      taskIds.set(name, ctx.taskId);
      if (name === "stuck") {
        await waitUntil(
          () =>
            db.get<{ s: string }>("SELECT status AS s FROM apalis_tasks WHERE id = ?", [ctx.taskId])
              ?.s === "killed",
          "the stuck item to be killed",
        );
      }
      return name;
    });

  const runId = await storage.pushStart(["a", "b", "stuck"]);
  const worker = new WorkerBuilder("kill-worker").backend(storage).concurrency(4)
    .handleSignals(false).build(flow);
  const running = worker.run();
  try {
    await waitUntil(() => taskIds.has("stuck"), "the stuck item to start");
    await storage.kill(taskIds.get("stuck")!, "operator gave up");
    const run = await storage.waitForRun(runId, { timeoutMs: RUN_TIMEOUT_MS });
    assert.equal(run.status, "failed");
    assert.equal(run.error?.name, "FilterMapError");
    assert.match(run.error?.message ?? "", /#2: operator gave up$/);
  } finally {
    await worker.stop();
    await running;
  }
});

Deno.test("Workflow.filterMap() feeds its results to the next andThen step", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<{ words: string[] }>(tmp.db, "then");
  const flow = new Workflow<{ words: string[] }>("then")
    .andThen(({ words }) => words)
    .filterMap((word: string) => (word.length > 3 ? word.length : undefined))
    .andThen((lengths) => lengths.reduce((sum, n) => sum + n, 0));

  const runId = await storage.pushStart({ words: ["a", "quick", "brown", "fox", "jumps"] });
  const run = await runToEnd(storage, flow, runId);

  assert.equal(run.status, "done", JSON.stringify(run.error));
  assert.equal(run.result, 15);
  assert.equal(run.workflow, "then");
  // andThen, the fan-out, 5 items, the collector, then the last andThen.
  assert.equal(run.steps.length, 9);
  assert.ok(run.steps.every((step) => step.status === "done"));
});

Deno.test("SqliteStorage.workflowRun() lists a filterMap's collector after its items when they are enqueued in the same millisecond", async () => {
  await using tmp = await tempDatabase();
  // A clock that never moves: every task of the run is enqueued in the same millisecond.
  const storage = new SqliteStorage<number[]>(tmp.db, "same-ms", { clock: new FakeClock() });
  const flow = new Workflow<number[]>("same-ms")
    .filterMap((n: number) => n + 1)
    .andThen((values) => values.length);

  const runId = await storage.pushStart([1, 2]);
  const run = await runToEnd(storage, flow, runId);

  assert.equal(run.status, "done", JSON.stringify(run.error));
  assert.equal(run.result, 2);
  const join = `filterMap:0:${run.steps[0]!.taskId}`;
  assert.deepEqual(run.steps.map((step) => step.step), [
    null,
    { i: 0, item: 1, join, slot: 0 },
    { i: 0, item: 1, join, slot: 1 },
    { i: 0, collect: join },
    { i: 1 },
  ]);
});

Deno.test("Workflow.filterMap() throws a TypeError when failedItems is not fail or skip", () => {
  assert.throws(
    () =>
      new Workflow<number[]>("bad-options").filterMap((n: number) => n, {
        failedItems: "drop" as "skip",
      }),
    { name: "TypeError", message: /'failedItems' must be "fail" or "skip"/ },
  );
});
