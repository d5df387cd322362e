import assert from "node:assert/strict";
import {
  AbortError,
  type Database,
  RunNotFoundError,
  type RunRecord,
  SqliteStorage,
  type TaskContext,
  WaitTimeoutError,
  type Worker,
  WorkerBuilder,
  type WorkerEvent,
  Workflow,
} from "../../mod.ts";
import { MsgPackCodec } from "../../msgpack.ts";
import { gate, tempDatabase, waitUntil } from "../_helpers.ts";

/** A worker for tests: no signal handlers. */
function builder<T>(storage: SqliteStorage<T>, name = "flow-worker"): WorkerBuilder<T> {
  return new WorkerBuilder(name).backend(storage).handleSignals(false);
}

/** Runs `worker` until the run ends, then returns the ended run. */
async function runToEnd<T, R = unknown>(
  worker: Worker<T>,
  storage: SqliteStorage<T>,
  runId: string,
): Promise<RunRecord<R>> {
  const ended = storage.waitForRun<R>(runId, { timeoutMs: 10_000 });
  await worker.runUntil(ended);
  return await ended;
}

/** How many tasks carry `runId`, counted in SQL (independent of `workflowRun`). */
function taskCount(db: Database, runId: string): number {
  return db.get<{ n: number }>("SELECT count(*) AS n FROM apalis_tasks WHERE run_id = ?", [
    runId,
  ])!.n;
}

// --- The seed's order fulfilment pipeline -------------------------------------------------

interface Order {
  id: number;
  customerEmail: string;
  items: string[];
  totalCents: number;
}

interface ChargedOrder {
  orderId: number;
  customerEmail: string;
  transactionId: string;
  items: string[];
}

interface StockedItem {
  orderId: number;
  sku: string;
}

interface DispatchedOrder {
  orderId: number;
  customerEmail: string;
  trackingNumber: string;
  itemCount: number;
}

const ORDER: Order = {
  id: 1001,
  customerEmail: "alice@example.com",
  items: ["WIDGET-A", "WIDGET-B", "WIDGET-C"],
  totalCents: 7499,
};

async function checkStock(item: StockedItem): Promise<StockedItem | undefined> {
  await Promise.resolve();
  return ["WIDGET-C", "WIDGET-D"].includes(item.sku) ? undefined : item;
}

/** The seed's pipeline; `dispatchedAt` records when the dispatch step started. */
function orderFulfilment(dispatchedAt: number[]) {
  return new Workflow<Order>("order-fulfilment")
    .andThen((order): ChargedOrder => ({
      orderId: order.id,
      customerEmail: order.customerEmail,
      transactionId: `txn_${order.id}`,
      items: order.items,
    }))
    .andThen((charged): [ChargedOrder, StockedItem[]] => [
      { ...charged, items: [] },
      charged.items.map((sku) => ({ orderId: charged.orderId, sku })),
    ])
    .andThen(async ([charged, items]): Promise<[ChargedOrder, StockedItem[]]> => {
      const available = (await Promise.all(items.map(checkStock)))
        .filter((item): item is StockedItem => item !== undefined);
      if (available.length === 0) throw new Error("No items available to fulfil this order");
      return [charged, available];
    })
    .delayFor(500)
    .andThen(([charged, items]): DispatchedOrder => {
      dispatchedAt.push(Date.now());
      return {
        orderId: charged.orderId,
        customerEmail: charged.customerEmail,
        trackingNumber: `TRACK-${charged.orderId}`,
        itemCount: items.length,
      };
    })
    .andThen((dispatched) =>
      `emailed ${dispatched.customerEmail}: ${dispatched.itemCount} item(s), ${dispatched.trackingNumber}`
    );
}

Deno.test("Workflow runs the seed's order fulfilment steps in order and ends the run done", async () => {
  await using tmp = await tempDatabase();
  const storage = SqliteStorage.newInQueue<Order>(tmp.db, "order-fulfilment");
  const dispatchedAt: number[] = [];
  const runId = await storage.pushStart(ORDER);
  const worker = builder(storage, "fulfilment-worker").build(orderFulfilment(dispatchedAt));
  const run = await runToEnd(worker, storage, runId);

  assert.equal(run.status, "done");
  assert.equal(run.workflow, "order-fulfilment");
  assert.equal(run.error, undefined);
  assert.equal(run.result, "emailed alice@example.com: 2 item(s), TRACK-1001");
  assert.ok(run.doneAt !== null && run.doneAt >= run.createdAt);

  const charged = {
    orderId: 1001,
    customerEmail: "alice@example.com",
    transactionId: "txn_1001",
    items: ["WIDGET-A", "WIDGET-B", "WIDGET-C"],
  };
  const emptied = { ...charged, items: [] };
  const stocked = ["WIDGET-A", "WIDGET-B", "WIDGET-C"].map((sku) => ({ orderId: 1001, sku }));
  const available = stocked.slice(0, 2);
  const dispatched = {
    orderId: 1001,
    customerEmail: "alice@example.com",
    trackingNumber: "TRACK-1001",
    itemCount: 2,
  };
  // 5 andThen steps and the delay, each its own task, in order.
  assert.deepEqual(
    run.steps.map((step) => ({
      step: step.step,
      status: step.status,
      attempts: step.attempts,
      result: step.result,
    })),
    [
      { step: null, status: "done", attempts: 1, result: charged },
      { step: { i: 1 }, status: "done", attempts: 1, result: [emptied, stocked] },
      { step: { i: 2 }, status: "done", attempts: 1, result: [emptied, available] },
      { step: { i: 3 }, status: "done", attempts: 1, result: [emptied, available] },
      { step: { i: 4 }, status: "done", attempts: 1, result: dispatched },
      { step: { i: 5 }, status: "done", attempts: 1, result: run.result },
    ],
  );
  assert.equal(taskCount(tmp.db, runId), 6);

  // The delay step is persisted: the dispatch task was scheduled 500 ms after it, and ran then.
  const delay = run.steps[3]!;
  const dispatch = run.steps[4]!;
  assert.ok(delay.doneAt !== null);
  assert.ok(
    dispatch.runAt >= delay.doneAt + 500,
    `dispatch due at ${dispatch.runAt}, delay done at ${delay.doneAt}`,
  );
  assert.equal(dispatchedAt.length, 1);
  assert.ok(
    dispatchedAt[0]! >= delay.doneAt + 500,
    `dispatch ran ${dispatchedAt[0]! - delay.doneAt} ms after the delay step`,
  );
});

Deno.test("Workflow runs the order pipeline's error path: no stocked item fails the step and the worker stops on the error event", async () => {
  await using tmp = await tempDatabase();
  const storage = SqliteStorage.newInQueue<Order>(tmp.db, "order-fulfilment");
  const runId = await storage.pushStart({ ...ORDER, items: ["WIDGET-C", "WIDGET-D"] });
  const errors: WorkerEvent[] = [];
  const worker = builder(storage, "fulfilment-worker")
    .onEvent((ctx, event) => {
      if (event.type === "error") {
        errors.push(event);
        ctx.stop();
      }
    })
    .build(orderFulfilment([]));
  await worker.run();

  assert.equal(errors.length, 1);
  const [event] = errors;
  assert.ok(event?.type === "error" && event.error instanceof Error);
  assert.equal(event.error.message, "No items available to fulfil this order");
  assert.equal(event.status, "failed", "an ordinary error is retried, not killed");
  const run = await storage.workflowRun(runId);
  assert.equal(run?.status, "running", "the step will be retried: the run goes on");
  assert.deepEqual(run.steps.map((step) => step.status), ["done", "done", "failed"]);
  assert.equal(taskCount(tmp.db, runId), 3);
});

// --- fold, repeatUntil, delayWith -----------------------------------------------------------

Deno.test("Workflow.fold() folds one task per item and passes the accumulator on", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number[]>(tmp.db, "fold");
  const seen: [number, number][] = [];
  const flow = new Workflow<number[]>("sum")
    .fold((acc: number, n) => {
      seen.push([acc, n]);
      return acc + n;
    }, 0)
    .andThen((sum) => `sum=${sum}`);
  const runId = await storage.pushStart([1, 2, 3, 4, 5]);
  const run = await runToEnd(builder(storage).build(flow), storage, runId);

  assert.equal(run.status, "done");
  assert.equal(run.result, "sum=15");
  assert.deepEqual(seen, [[0, 1], [1, 2], [3, 3], [6, 4], [10, 5]]);
  const folds = run.steps.filter((step) => (step.step as { i: number } | null)?.i !== 1);
  assert.equal(folds.length, 5, "one fold task per item");
  assert.ok(folds.every((step) => step.status === "done" && step.attempts === 1));
  assert.deepEqual(run.steps.at(-1)?.step, { i: 1 });
  assert.equal(taskCount(tmp.db, runId), 6);
});

Deno.test("Workflow.fold() passes init on when the list is empty", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number[]>(tmp.db, "fold-empty");
  let calls = 0;
  const flow = new Workflow<number[]>("sum")
    .fold((acc: number, n) => {
      calls++;
      return acc + n;
    }, 42)
    .andThen((sum) => sum + 1);
  const runId = await storage.pushStart([]);
  const run = await runToEnd(builder(storage).build(flow), storage, runId);

  assert.equal(run.status, "done");
  assert.equal(run.result, 43);
  assert.equal(calls, 0);
  assert.equal(run.steps.length, 2);
  assert.equal(run.steps[0]?.result, 42);
});

Deno.test("Workflow.repeatUntil() runs the step again until it returns a value, then goes on", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "repeat");
  const inputs: string[] = [];
  const flow = new Workflow<string>("poll")
    .repeatUntil((input) => {
      inputs.push(input);
      return inputs.length < 3 ? undefined : `${input} ready after ${inputs.length} tries`;
    })
    .andThen((value) => value.toUpperCase());
  const runId = await storage.pushStart("report");
  const run = await runToEnd(builder(storage).build(flow), storage, runId);

  assert.equal(run.status, "done");
  assert.equal(run.result, "REPORT READY AFTER 3 TRIES");
  assert.deepEqual(inputs, ["report", "report", "report"], "every try gets the same input");
  assert.deepEqual(
    run.steps.map((step) => step.step),
    [null, { i: 0, rep: 1 }, { i: 0, rep: 2 }, { i: 1 }],
    "3 tasks for the repeated step, then the next step",
  );
  assert.ok(run.steps.every((step) => step.status === "done" && step.attempts === 1));
});

Deno.test("Workflow.delayWith() schedules the next step as many ms as it computes from the input", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "delay-with");
  const delayInputs: number[] = [];
  const startedAt: number[] = [];
  const flow = new Workflow<number>("wait")
    .andThen((n) => n * 3)
    .delayWith((n) => {
      delayInputs.push(n);
      return n * 10;
    })
    .andThen((n) => {
      startedAt.push(Date.now());
      return n + 1;
    });
  const runId = await storage.pushStart(10);
  const run = await runToEnd(builder(storage).build(flow), storage, runId);

  assert.equal(run.status, "done");
  assert.equal(run.result, 31);
  assert.deepEqual(delayInputs, [30]);
  const delay = run.steps[1]!;
  const next = run.steps[2]!;
  assert.equal(delay.result, 30, "the delay passes its input on");
  assert.ok(delay.doneAt !== null);
  assert.ok(next.runAt >= delay.doneAt + 300, `next due ${next.runAt - delay.doneAt} ms after`);
  assert.ok(startedAt[0]! >= delay.doneAt + 300, `ran ${startedAt[0]! - delay.doneAt} ms after`);
});

// --- failures and retries -------------------------------------------------------------------

Deno.test("Workflow fails the run when a step throws AbortError, and enqueues no further step", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "abort");
  let thirdCalls = 0;
  const flow = new Workflow<number>("charge")
    .andThen((n) => n + 1)
    .andThen((n): number => {
      throw new AbortError(`card declined for ${n}`);
    })
    .andThen((n) => {
      thirdCalls++;
      return n;
    });
  const runId = await storage.pushStart(1);
  const run = await runToEnd(builder(storage).build(flow), storage, runId);

  assert.equal(run.status, "failed");
  assert.equal(run.result, undefined);
  assert.equal(run.error?.name, "AbortError");
  assert.equal(run.error?.message, "card declined for 2");
  assert.ok(run.doneAt !== null);
  assert.deepEqual(
    run.steps.map((step) => [step.status, step.attempts]),
    [["done", 1], ["killed", 1]],
  );
  assert.equal(taskCount(tmp.db, runId), 2, "no task after the killed step");
  assert.equal(thirdCalls, 0);
});

Deno.test("Workflow retries a failed step with the worker's persisted backoff and the run ends done", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "flaky");
  const attemptsAt: number[] = [];
  const failures: { retryAt: number | undefined; runAt: number; gap: number; status: string }[] =
    [];
  const flow = new Workflow<number>("flaky")
    .andThen((n) => n * 2)
    .andThen((n, ctx: TaskContext) => {
      attemptsAt.push(Date.now());
      if (ctx.attempt === 1) throw new Error("flaky upstream");
      return n + 1;
    })
    .andThen((n) => `got ${n}`);
  const runId = await storage.pushStart(5);
  const worker = builder(storage)
    .retry({ backoff: { initialMs: 20, jitter: 0 } })
    .onEvent((_ctx, event) => {
      if (event.type !== "error" || !event.task) return;
      // Synchronously after the commit: the worker cannot have claimed the retry yet.
      const row = tmp.db.get<{ status: string; run_at: number; done_at: number }>(
        "SELECT status, run_at, done_at FROM apalis_tasks WHERE id = ?",
        [event.task.taskId],
      )!;
      failures.push({
        retryAt: event.retryAt,
        runAt: row.run_at,
        gap: row.run_at - row.done_at,
        status: row.status,
      });
    })
    .build(flow);
  const run = await runToEnd(worker, storage, runId);

  assert.equal(run.status, "done");
  assert.equal(run.result, "got 11");
  assert.deepEqual(run.steps.map((step) => [step.status, step.attempts]), [
    ["done", 1],
    ["done", 2],
    ["done", 1],
  ]);
  assert.equal(failures.length, 1);
  const [failure] = failures;
  assert.equal(failure?.status, "failed");
  assert.equal(failure.gap, 20, "the retry is persisted 20 ms after the failed attempt");
  assert.equal(failure.retryAt, failure.runAt);
  assert.equal(attemptsAt.length, 2);
  assert.ok(attemptsAt[1]! >= failure.runAt, "the retry did not run before it was due");
  assert.equal(taskCount(tmp.db, runId), 3);
});

Deno.test("SqliteStorage.pushStart() options (maxAttempts, priority, backoff) apply to every step of the run", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "options");
  const flow = new Workflow<number>("inherit").andThen((n) => n + 1).andThen((n) => n * 2);
  const runId = await storage.pushStart(1, {
    maxAttempts: 3,
    priority: 4,
    backoff: { initialMs: 20, jitter: 0 },
  });
  const run = await runToEnd(builder(storage).build(flow), storage, runId);
  assert.equal(run.status, "done");
  const rows = tmp.db.all<{ max_attempts: number; priority: number; backoff: string | null }>(
    "SELECT max_attempts, priority, backoff FROM apalis_tasks WHERE run_id = ? ORDER BY id",
    [runId],
  );
  assert.equal(rows.length, 2);
  const [first, second] = rows.map((row) => ({ ...row }));
  assert.ok(first?.backoff !== null, "the first step has the run's backoff");
  // A step's retries must use the backoff the run was started with, like its attempts and
  // priority: a later step that falls back to the worker's default waits 1 s instead of 20 ms.
  assert.deepEqual(second, first, "the second step carries the run's push options");
});

Deno.test("Workflow passes step payloads and results through the storage's codec (MsgPack)", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<Uint8Array>(tmp.db, "bytes").withCodec(MsgPackCodec);
  const received: unknown[] = [];
  const flow = new Workflow<Uint8Array>("bytes")
    .andThen((bytes) => {
      received.push(bytes);
      return bytes.map((b) => b * 2);
    })
    .andThen((bytes) => {
      received.push(bytes);
      return { bytes, sum: bytes.reduce((a, b) => a + b, 0) };
    });
  const runId = await storage.pushStart(new Uint8Array([1, 2, 3]));
  const run = await runToEnd(builder(storage).build(flow), storage, runId);

  assert.equal(run.status, "done");
  assert.ok(received.every((value) => value instanceof Uint8Array), "steps receive Uint8Array");
  assert.deepEqual(received, [new Uint8Array([1, 2, 3]), new Uint8Array([2, 4, 6])]);
  const expected = { bytes: new Uint8Array([2, 4, 6]), sum: 12 };
  assert.deepEqual(run.result, expected);
  assert.deepEqual(run.steps[0]?.result, new Uint8Array([2, 4, 6]));

  // What is stored is MessagePack: the second task's args, and the run's result.
  const second = tmp.db.get<{ args: Uint8Array }>(
    "SELECT args FROM apalis_tasks WHERE id = ?",
    [run.steps[1]!.taskId],
  )!;
  assert.deepEqual(MsgPackCodec.decode(second.args), new Uint8Array([2, 4, 6]));
  const stored = tmp.db.get<{ result: Uint8Array }>(
    "SELECT result FROM apalis_runs WHERE id = ?",
    [runId],
  )!;
  assert.deepEqual(MsgPackCodec.decode(stored.result), expected);
});

// --- kill and retry by hand -----------------------------------------------------------------

Deno.test("SqliteStorage.kill() of a pending step fails its run, and retry() revives it to done", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "kill");
  const flow = new Workflow<number>("slow")
    .andThen((n) => n + 1)
    .delayFor(60_000)
    .andThen((n) => n * 10);
  const runId = await storage.pushStart(1);

  // Run until the last step is enqueued (due in a minute), then stop the worker.
  const first = builder(storage).build(flow);
  const running = first.run();
  try {
    await waitUntil(
      async () => (await storage.workflowRun(runId))?.steps.length === 3,
      "the step after the delay to be enqueued",
    );
  } finally {
    await first.stop();
    await running;
  }
  const pending = (await storage.workflowRun(runId))!.steps[2]!;
  assert.equal(pending.status, "pending");

  const killed = await storage.kill(pending.taskId, "order cancelled");
  assert.equal(killed.status, "killed");
  const failed = await storage.waitForRun(runId, { timeoutMs: 1_000 });
  assert.equal(failed.status, "failed");
  assert.equal(failed.error?.name, "KilledError");
  assert.equal(failed.error?.message, "order cancelled");
  assert.ok(failed.doneAt !== null);
  assert.equal(taskCount(tmp.db, runId), 3);

  const retried = await storage.retry(pending.taskId);
  assert.equal(retried.status, "pending");
  const revived = await storage.workflowRun(runId);
  assert.equal(revived?.status, "running");
  assert.equal(revived.error, undefined);
  assert.equal(revived.doneAt, null);

  const second = builder(storage).build(flow);
  const run = await runToEnd(second, storage, runId);
  assert.equal(run.status, "done");
  assert.equal(run.result, 20);
  assert.deepEqual(run.steps.map((step) => [step.status, step.attempts]), [
    ["done", 1],
    ["done", 1],
    ["done", 1],
  ]);
  assert.equal(taskCount(tmp.db, runId), 3);
});

Deno.test("SqliteStorage.kill() of a running step fails its run and discards the step's successor", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "kill-running");
  const released = gate();
  let started = false;
  let secondCalls = 0;
  const flow = new Workflow<number>("cancelled")
    .andThen(async (n) => {
      started = true;
      await released.promise;
      return n + 1;
    })
    .andThen((n) => {
      secondCalls++;
      return n;
    });
  const runId = await storage.pushStart(1);
  const worker = builder(storage).build(flow);
  const running = worker.run();
  try {
    await waitUntil(() => started, "the first step to start");
    const [step] = (await storage.workflowRun(runId))!.steps;
    assert.equal(step?.status, "running");
    await storage.kill(step.taskId, "cancelled while running");
    assert.equal((await storage.workflowRun(runId))?.status, "failed");
    released.open();
    await waitUntil(() => worker.inFlight === 0, "the killed step's handler to finish");
  } finally {
    released.open();
    await worker.stop();
    await running;
  }
  const run = await storage.workflowRun(runId);
  assert.equal(run?.status, "failed");
  assert.equal(run.error?.message, "cancelled while running");
  assert.deepEqual(run.steps.map((step) => step.status), ["killed"], "the late ack is fenced off");
  assert.equal(taskCount(tmp.db, runId), 1, "no successor of the killed step");
  assert.equal(secondCalls, 0);
});

// --- misuse and lookups ---------------------------------------------------------------------

Deno.test("Workflow kills a plain push (not pushStart) with a clear 'not part of a run' error", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "plain");
  let calls = 0;
  const flow = new Workflow<number>("never").andThen((n) => {
    calls++;
    return n;
  });
  const id = await storage.push(7);
  const worker = builder(storage).build(flow);
  const running = worker.run();
  let task;
  try {
    [task] = await storage.waitFor([id], { timeoutMs: 10_000 });
  } finally {
    await worker.stop();
    await running;
  }
  assert.equal(task?.status, "killed");
  assert.equal(task.attempts, 1, "killed at once, not retried");
  assert.equal(task.lastError?.name, "AbortError");
  assert.match(task.lastError.message, /not part of a run/);
  assert.match(task.lastError.message, /pushStart/);
  assert.equal(calls, 0);
  assert.equal(tmp.db.get<{ n: number }>("SELECT count(*) AS n FROM apalis_runs")!.n, 0);
});

Deno.test("SqliteStorage.waitForRun() rejects with WaitTimeoutError when the run does not end in time", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "nobody");
  const runId = await storage.pushStart(1);
  await assert.rejects(storage.waitForRun(runId, { timeoutMs: 50 }), WaitTimeoutError);
  assert.equal((await storage.workflowRun(runId))?.status, "running");
});

Deno.test("SqliteStorage.workflowRun() returns undefined for an unknown run id", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "unknown");
  assert.equal(await storage.workflowRun("01NOSUCHRUN0000000000000000"), undefined);
  // A task id is not a run id.
  const id = await storage.push(1);
  assert.equal(await storage.workflowRun(id), undefined);
  await assert.rejects(storage.waitForRun("01NOSUCHRUN0000000000000000"), RunNotFoundError);
});
