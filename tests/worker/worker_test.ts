import assert from "node:assert/strict";
import {
  AbortError,
  type Database,
  SqliteStorage,
  Task,
  type TaskContext,
  type TaskRecord,
  WorkerBuilder,
  type WorkerContext,
  type WorkerEvent,
} from "../../mod.ts";
import { tempDatabase, waitUntil } from "../_helpers.ts";

function countRunning(db: Database): number {
  return db.get<{ n: number }>("SELECT count(*) AS n FROM apalis_tasks WHERE status = 'running'")!
    .n;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

Deno.test("WorkerBuilder.concurrency() reaches and never exceeds the limit", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "limit");
  const ids = await storage.pushAll(range(100).map((i) => Task.builder(i).build()));
  let live = 0;
  let max = 0;
  let overLimitInFlight = 0;
  const worker = new WorkerBuilder("limited")
    .backend(storage)
    .concurrency(4)
    .handleSignals(false)
    .build(async (n) => {
      live++;
      max = Math.max(max, live);
      if (worker.inFlight > 4) overLimitInFlight++;
      await sleep(2);
      live--;
      return n;
    });
  const running = worker.run();
  const tasks = await storage.waitFor(ids, { timeoutMs: 30_000 });
  await worker.stop();
  await running;

  assert.equal(max, 4);
  assert.equal(overLimitInFlight, 0);
  assert.ok(tasks.every((t) => t.status === "done" && t.attempts === 1));
  assert.equal(countRunning(tmp.db), 0);
});

Deno.test("WorkerBuilder.concurrency(1) runs strictly one handler at a time", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "serial");
  const ids = await storage.pushAll(range(20).map((i) => Task.builder(i).build()));
  let live = 0;
  let max = 0;
  const log: string[] = [];
  const worker = new WorkerBuilder("serial-worker")
    .backend(storage)
    .concurrency(1)
    .handleSignals(false)
    .build(async (n) => {
      live++;
      max = Math.max(max, live);
      log.push(`start ${n}`);
      await sleep(1);
      log.push(`end ${n}`);
      live--;
    });
  const running = worker.run();
  await storage.waitFor(ids, { timeoutMs: 30_000 });
  await worker.stop();
  await running;

  assert.equal(max, 1);
  assert.equal(log.length, 40);
  // Each start is followed by its own end before the next start.
  for (let i = 0; i < log.length; i += 2) {
    assert.match(log[i]!, /^start /);
    assert.equal(log[i + 1], log[i]!.replace("start", "end"));
  }
  assert.equal(countRunning(tmp.db), 0);
});

Deno.test("Worker.run() kills a task whose payload cannot be decoded and keeps running", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<{ n: number }>(tmp.db, "decode");
  const good1 = await storage.push({ n: 1 });
  const bad = await storage.push({ n: 2 }, { maxAttempts: 5 });
  const good2 = await storage.push({ n: 3 });
  // Bytes that are not UTF-8; and bytes a worker reading text would see cut at the NUL, as "1".
  const badNul = await storage.push({ n: 5 });
  tmp.db.run("UPDATE apalis_tasks SET args = X'FFFF' WHERE id = ?", [bad]);
  tmp.db.run("UPDATE apalis_tasks SET args = X'3100' WHERE id = ?", [badNul]);
  const seen: number[] = [];
  const worker = new WorkerBuilder("decoder")
    .backend(storage)
    .handleSignals(false)
    .build((args) => {
      seen.push(args.n);
      return args.n * 2;
    });
  const running = worker.run();
  const [t1, tBad, t2, tNul] = await storage.waitFor([good1, bad, good2, badNul], {
    timeoutMs: 10_000,
  });
  // The worker is still running: a task pushed now is done too.
  const later = await storage.push({ n: 4 });
  const [tLater] = await storage.waitFor(later, { timeoutMs: 10_000 });
  await worker.stop();
  await running;

  assert.equal(tBad?.status, "killed");
  assert.equal(tBad?.attempts, 1);
  assert.equal(tBad?.lastError?.name, "DecodeError");
  assert.match(tBad?.lastError?.message ?? "", /decode/i);
  assert.equal(tNul?.status, "killed");
  assert.equal(tNul?.lastError?.name, "DecodeError");
  assert.deepEqual(seen.sort(), [1, 3, 4], "the handler never saw the bad payload");
  assert.deepEqual([t1?.status, t2?.status, tLater?.status], ["done", "done", "done"]);
  assert.equal(tLater?.lastResult, 8);
  assert.equal(countRunning(tmp.db), 0);
});

Deno.test("WorkerBuilder.layer() runs middleware outermost first and lets it replace the arguments", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<{ text: string }>(tmp.db, "layers");
  const id = await storage.push({ text: "hello" });
  const trace: string[] = [];
  const worker = new WorkerBuilder("layered")
    .backend(storage)
    .handleSignals(false)
    .layer(async (args, _ctx, next) => {
      trace.push(`outer before ${args.text}`);
      const result = await next();
      trace.push(`outer after ${String(result)}`);
      return `${result}!`;
    })
    .layer(async (args, _ctx, next) => {
      trace.push(`inner before ${args.text}`);
      const result = await next({ text: args.text.toUpperCase() });
      trace.push(`inner after ${String(result)}`);
      return result;
    })
    .build((args) => {
      trace.push(`handler ${args.text}`);
      return `handled ${args.text}`;
    });
  const running = worker.run();
  const [task] = await storage.waitFor(id, { timeoutMs: 10_000 });
  await worker.stop();
  await running;

  assert.deepEqual(trace, [
    "outer before hello",
    "inner before hello",
    "handler HELLO",
    "inner after handled HELLO",
    "outer after handled HELLO",
  ]);
  assert.equal(task?.status, "done");
  assert.equal(task?.lastResult, "handled HELLO!");
  assert.deepEqual(task?.args, { text: "hello" }, "the stored arguments are unchanged");
});

Deno.test("WorkerBuilder.layer() fails the attempt when a middleware throws", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "layer-throws");
  const id = await storage.push("x", { maxAttempts: 3 });
  const snapshots: Promise<TaskRecord<string> | undefined>[] = [];
  const handlerAttempts: number[] = [];
  const worker = new WorkerBuilder("layer-thrower")
    .backend(storage)
    .retry({ backoff: { initialMs: 10, jitter: 0 } })
    .handleSignals(false)
    .onEvent((_ctx, event) => {
      if (event.type === "error" && event.task) {
        snapshots.push(storage.fetchById(event.task.taskId));
      }
    })
    .layer((args, ctx, next) => {
      if (ctx.attempt === 1) throw new Error("middleware refused");
      return next(args);
    })
    .build((_args, ctx) => {
      handlerAttempts.push(ctx.attempt);
      return "ok";
    });
  const running = worker.run();
  const [task] = await storage.waitFor(id, { timeoutMs: 10_000 });
  await worker.stop();
  await running;

  const [failed] = await Promise.all(snapshots);
  assert.equal(snapshots.length, 1);
  assert.equal(failed?.status, "failed");
  assert.equal(failed?.lastError?.message, "middleware refused");
  assert.deepEqual(handlerAttempts, [2], "the handler did not run on the refused attempt");
  assert.equal(task?.status, "done");
  assert.equal(task?.attempts, 2);
});

class Greeter {
  greet(name: string): string {
    return `hello ${name}`;
  }
}

Deno.test("TaskContext.data() reads values registered by class and by key, and fails the attempt for a missing key", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "data");
  const ok = await storage.push("ada");
  const missing = await storage.push("missing", { maxAttempts: 1 });
  const symbolKey = Symbol("answer");
  const worker = new WorkerBuilder("data-worker")
    .backend(storage)
    .data(new Greeter())
    .data("region", "eu-west")
    .data(symbolKey, 42)
    .handleSignals(false)
    .build((name, ctx) => {
      if (name === "missing") return ctx.data<string>("not-registered");
      return `${ctx.data(Greeter).greet(name)} from ${ctx.data<string>("region")} (${
        ctx.data<number>(symbolKey)
      })`;
    });
  const running = worker.run();
  const [okTask, missingTask] = await storage.waitFor([ok, missing], { timeoutMs: 10_000 });
  await worker.stop();
  await running;

  assert.equal(okTask?.lastResult, "hello ada from eu-west (42)");
  assert.equal(missingTask?.status, "killed");
  assert.equal(missingTask?.lastError?.name, "Error");
  assert.match(missingTask?.lastError?.message ?? "", /not-registered/);
  assert.match(missingTask?.lastError?.message ?? "", /WorkerBuilder\.data\(\)/);
});

Deno.test("WorkerBuilder.onEvent() receives start, idle, heartbeat, success, error, stop and exit", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "events");
  const events: WorkerEvent[] = [];
  const names: string[] = [];
  let thrown = 0;
  const worker = new WorkerBuilder("eventful")
    .backend(storage)
    .handleSignals(false)
    .onEvent(() => {
      thrown++;
      throw new Error("a broken listener");
    })
    .onEvent((ctx: WorkerContext, event) => {
      names.push(ctx.name);
      events.push(event);
    })
    .build((args) => {
      if (args === "bad") throw new AbortError("bad task");
      return `ok ${args}`;
    });
  const running = worker.run();
  await waitUntil(() => events.some((e) => e.type === "idle"), "the idle event");
  const good = await storage.push("good");
  const bad = await storage.push("bad");
  await storage.waitFor([good, bad], { timeoutMs: 10_000 });
  await worker.stop();
  await running;

  const types = events.map((e) => e.type);
  assert.equal(types[0], "start");
  assert.equal(types.at(-1), "exit");
  assert.equal(types.at(-2), "stop");
  for (const type of ["start", "idle", "heartbeat", "success", "error", "stop", "exit"]) {
    assert.ok(types.includes(type as WorkerEvent["type"]), `a '${type}' event was emitted`);
  }
  assert.ok(names.every((name) => name === "eventful"));
  assert.equal(thrown, events.length, "the throwing listener saw every event too");

  const success = events.find((e) => e.type === "success");
  assert.ok(success?.type === "success");
  assert.equal(success.task.taskId, good);
  assert.equal(success.task.queue, "events");
  assert.equal(success.task.attempt, 1);
  assert.equal(success.result, "ok good");
  assert.ok(success.task.durationMs >= 0);
  const error = events.find((e) => e.type === "error" && e.task);
  assert.ok(error?.type === "error");
  assert.equal(error.task?.taskId, bad);
  assert.equal(error.status, "killed");
  assert.ok(error.error instanceof AbortError);
  const exit = events.at(-1);
  assert.ok(exit?.type === "exit");
  assert.equal(exit.error, undefined);
  const heartbeat = events.find((e) => e.type === "heartbeat");
  assert.ok(heartbeat?.type === "heartbeat");
  assert.equal(heartbeat.rescued, 0);
});

Deno.test("TaskContext exposes the task's id, attempt, queue, priority, meta and maxAttempts", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "fields");
  const id = await storage.pushTask(
    Task.builder("x").priority(7).maxAttempts(4).meta("tenant", "acme").meta("n", 3).build(),
  );
  const plain = await storage.push("plain");
  const contexts: TaskContext[] = [];
  const worker = new WorkerBuilder("fields-worker")
    .backend(storage)
    .retry({ backoff: { initialMs: 5, jitter: 0 } })
    .handleSignals(false)
    .build((args, ctx) => {
      contexts.push(ctx);
      if (args === "x" && ctx.attempt === 1) throw new Error("once more");
    });
  const running = worker.run();
  await storage.waitFor([id, plain], { timeoutMs: 10_000 });
  await worker.stop();
  await running;

  const mine = contexts.filter((ctx) => ctx.taskId === id);
  assert.deepEqual(mine.map((ctx) => ctx.attempt), [1, 2]);
  for (const ctx of mine) {
    assert.equal(ctx.queue, "fields");
    assert.equal(ctx.priority, 7);
    assert.equal(ctx.maxAttempts, 4);
    assert.deepEqual(ctx.meta, { tenant: "acme", n: 3 });
    assert.equal(ctx.worker.name, "fields-worker");
    assert.ok(ctx.signal instanceof AbortSignal);
    assert.equal(ctx.signal.aborted, false);
  }
  const other = contexts.find((ctx) => ctx.taskId === plain);
  assert.equal(other?.priority, 0);
  assert.equal(other?.maxAttempts, 5);
  assert.deepEqual(other?.meta, {});
});

Deno.test("Worker.run() stores the handler's return value as lastResult", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<string>(tmp.db, "results");
  const obj = await storage.push("object");
  const none = await storage.push("undefined");
  const nul = await storage.push("null");
  const result = { ok: true, items: [1, "two", { three: 3 }], nested: { deep: null } };
  const worker = new WorkerBuilder("results-worker")
    .backend(storage)
    .handleSignals(false)
    .build(async (args) => {
      if (args === "object") return result;
      if (args === "null") return null;
      await sleep(0);
    });
  const running = worker.run();
  const [objTask, noneTask, nullTask] = await storage.waitFor([obj, none, nul], {
    timeoutMs: 10_000,
  });
  await worker.stop();
  await running;

  assert.equal(objTask?.status, "done");
  assert.deepEqual(objTask?.lastResult, result);
  assert.equal(noneTask?.status, "done");
  assert.equal(noneTask?.lastResult, undefined);
  const stored = tmp.db.get<{ last_result: unknown }>(
    "SELECT last_result FROM apalis_tasks WHERE id = ?",
    [none],
  );
  assert.equal(stored?.last_result, null);
  assert.equal(nullTask?.status, "done");
  assert.equal(nullTask?.lastResult, null);
});

Deno.test("Worker.run() keeps running whatever its handlers throw", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "resilient");
  const ids = await storage.pushAll(range(100).map((i) => Task.builder(i).build()));
  let exited = false;
  const worker = new WorkerBuilder("resilient-worker")
    .backend(storage)
    .concurrency(4)
    .handleSignals(false)
    .onEvent((_ctx, event) => {
      if (event.type === "exit") exited = true;
    })
    .build((n) => {
      if (n % 3 === 0) throw new AbortError(`task ${n} gives up`);
      return n;
    });
  const running = worker.run();
  const tasks = await storage.waitFor(ids, { timeoutMs: 30_000 });
  assert.equal(exited, false);
  const extra = await storage.push(1000);
  const [extraTask] = await storage.waitFor(extra, { timeoutMs: 10_000 });
  await worker.stop();
  await running;

  for (const task of tasks) {
    const n = task.args;
    if (n % 3 === 0) {
      assert.equal(task.status, "killed", `task ${n}`);
      assert.equal(task.lastError?.message, `task ${n} gives up`);
    } else {
      assert.equal(task.status, "done", `task ${n}`);
      assert.equal(task.lastResult, n);
    }
  }
  assert.equal(tasks.filter((t) => t.status === "killed").length, 34);
  assert.equal(tasks.filter((t) => t.status === "done").length, 66);
  assert.equal(extraTask?.status, "done");
  const stats = await storage.stats("resilient");
  assert.equal(stats.running, 0);
  assert.equal(stats.done, 67);
});
