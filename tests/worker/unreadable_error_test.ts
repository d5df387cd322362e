/**
 * Recording a failure never throws, whatever the handler threw: an error whose `name` or
 * `message` is a BigInt, a Symbol or an object, getters that throw, a `Proxy` that throws on
 * every access, cycles. Each task ends `killed` with a stored error of plain strings, and the
 * worker goes on with the next task (an unhandled rejection would fail this test).
 *
 * @module
 */
import assert from "node:assert/strict";
import { SqliteStorage, type TaskRecord, WorkerBuilder, type WorkerEvent } from "../../mod.ts";
import { tempDatabase } from "../_helpers.ts";

function throwing(): never {
  throw new Error("getter exploded");
}

/** A Proxy over an Error whose every trap throws. */
function hostileProxy(): unknown {
  return new Proxy(new Error("hidden"), {
    get: throwing,
    getPrototypeOf: throwing,
    ownKeys: throwing,
    getOwnPropertyDescriptor: throwing,
    has: throwing,
  });
}

/** What each task's handler throws, by its payload. */
const THROWN: Record<string, () => unknown> = {
  "bigint name": () => Object.assign(new Error("x"), { name: 10n }),
  "symbol name": () => Object.assign(new Error("x"), { name: Symbol("who") }),
  "object message": () => Object.assign(new Error(), { message: { deep: [1, 2] } }),
  "bigint message": () => Object.assign(new Error(), { message: 7n }),
  "throwing name getter": () => Object.defineProperty(new Error("m"), "name", { get: throwing }),
  "throwing message getter": () => Object.defineProperty(new Error(), "message", { get: throwing }),
  "throwing stack getter": () => Object.defineProperty(new Error("m"), "stack", { get: throwing }),
  "hostile proxy": hostileProxy,
  "revoked proxy": () => {
    const { proxy, revoke } = Proxy.revocable(new Error("gone"), {});
    revoke();
    return proxy;
  },
  "cyclic cause": () => {
    const error = new Error("outer") as Error & { cause?: unknown };
    error.cause = error;
    return error;
  },
  "cyclic object": () => {
    const value: Record<string, unknown> = { code: 1 };
    value.self = value;
    return value;
  },
  "null-prototype object": () => Object.create(null),
  "throwing toJSON and toString": () => ({
    toJSON: throwing,
    toString: throwing,
  }),
  "bigint": () => 10n,
  "symbol": () => Symbol("thrown"),
};

/** Expected stored error (name, and a pattern of its message), by payload. */
const EXPECTED: Record<string, [string, RegExp]> = {
  "bigint name": ["10n", /^x$/],
  "symbol name": ["Symbol(who)", /^x$/],
  "object message": ["Error", /^\{"deep":\[1,2\]\}$/],
  "bigint message": ["Error", /^7n$/],
  "throwing name getter": ["Error", /^m$/],
  "throwing message getter": ["Error", /cannot be read/],
  "throwing stack getter": ["Error", /^m$/],
  "hostile proxy": ["NonError", /cannot be read/],
  "revoked proxy": ["NonError", /cannot be read/],
  "cyclic cause": ["Error", /^outer$/],
  "cyclic object": ["NonError", /object/],
  "null-prototype object": ["NonError", /^\{\}$/],
  "throwing toJSON and toString": ["NonError", /cannot be read/],
  "bigint": ["NonError", /^10n$/],
  "symbol": ["NonError", /^Symbol\(thrown\)$/],
};

Deno.test("Worker.run() kills each task with a readable stored error and keeps working when handlers throw errors that cannot be serialised", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "hostile");
  const ids = new Map<string, string>();
  for (const kind of Object.keys(THROWN)) {
    ids.set(kind, await storage.push(kind, { maxAttempts: 2 }));
  }
  const last = await storage.push("fine");
  const events: WorkerEvent[] = [];
  const worker = new WorkerBuilder("hostile-worker")
    .backend(storage)
    .retry({ backoff: { initialMs: 5, jitter: 0 } })
    .handleSignals(false)
    .onEvent((_ctx, event) => events.push(event))
    .build((kind) => {
      if (kind === "fine") return "still working";
      throw THROWN[kind]!();
    });
  const running = worker.run();
  const tasks = await storage.waitFor([...ids.values(), last], { timeoutMs: 10_000 });
  await worker.stop();
  await running;

  const byId = new Map(tasks.map((task) => [task.id, task]));
  for (const [kind, id] of ids) {
    const task = byId.get(id) as TaskRecord<string>;
    assert.equal(task.status, "killed", `${kind}: ended ${task.status}`);
    assert.equal(task.attempts, 2, `${kind}: retried once`);
    const [name, message] = EXPECTED[kind]!;
    assert.equal(typeof task.lastError?.name, "string", kind);
    assert.equal(typeof task.lastError?.message, "string", kind);
    assert.equal(task.lastError?.name, name, `${kind}: stored name`);
    assert.match(task.lastError?.message ?? "", message, `${kind}: stored message`);
  }
  assert.equal(byId.get(last)?.status, "done", "the worker went on to the next task");
  assert.equal(byId.get(last)?.lastResult, "still working");
  const running_ = tmp.db.get<{ n: number }>(
    "SELECT count(*) AS n FROM apalis_tasks WHERE status = 'running'",
  )!.n;
  assert.equal(running_, 0, "no task stays running");
  assert.equal(events.filter((e) => e.type === "exit" && e.error !== undefined).length, 0);
});

Deno.test("Worker.run() fails the attempt when the handler's result cannot even be inspected (a Proxy whose prototype throws)", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "hostile-result");
  const id = await storage.push("x", { maxAttempts: 1 });
  const worker = new WorkerBuilder("hostile-result-worker")
    .backend(storage)
    .handleSignals(false)
    .build(() => new Proxy({}, { getPrototypeOf: throwing }));
  const running = worker.run();
  const [task] = await storage.waitFor(id, { timeoutMs: 10_000 });
  await worker.stop();
  await running;
  assert.equal(task!.status, "killed");
  assert.match(
    task!.lastError?.message ?? "",
    /^Cannot record the outcome of task .*getter exploded/,
  );
});

Deno.test("Worker.run() retries with the default backoff and reports an error event when the backoff function throws or returns NaN", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "bad-backoff");
  const throws = await storage.push("throws", { maxAttempts: 2 });
  const nan = await storage.push("nan", { maxAttempts: 2 });
  const events: WorkerEvent[] = [];
  const snapshots: Promise<TaskRecord<string> | undefined>[] = [];
  const worker = new WorkerBuilder("bad-backoff-worker")
    .backend(storage)
    .concurrency(2)
    .retry({
      backoff: (_attempt, error) => {
        if ((error as Error).message === "throws") throw Symbol("no delay");
        return NaN;
      },
    })
    .handleSignals(false)
    .onEvent((_ctx, event) => {
      events.push(event);
      if (event.type === "error" && event.task?.attempt === 1) {
        snapshots.push(storage.fetchById(event.task.taskId));
      }
    })
    .build((kind, ctx) => {
      if (ctx.attempt === 1) throw new Error(kind);
      return "ok";
    });
  const running = worker.run();
  // The default backoff waits about a second before the retry.
  const tasks = await storage.waitFor([throws, nan], { timeoutMs: 10_000 });
  await worker.stop();
  await running;

  for (const snapshot of await Promise.all(snapshots)) {
    assert.equal(snapshot?.status, "failed");
    const delay = snapshot!.runAt - snapshot!.doneAt!;
    assert.ok(delay >= 800 && delay <= 1200, `default backoff of 1 s ± 20 %: ${delay} ms`);
  }
  assert.deepEqual(tasks.map((task) => task.status), ["done", "done"]);
  const reports = events
    .filter((e) => e.type === "error" && !e.task)
    .map((e) => (e as { error: Error }).error.message);
  assert.equal(reports.length, 2, reports.join("\n"));
  assert.ok(reports.some((m) => /backoff .* threw Symbol\(no delay\)/.test(m)), reports.join("\n"));
  assert.ok(reports.some((m) => /backoff .* returned NaN/.test(m)), reports.join("\n"));
});
