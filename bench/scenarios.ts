/**
 * The in-process scenarios: push one by one, `pushAll`, drain by one worker, and the
 * enqueue→start latency of an idle worker, on either backend (a {@linkcode BenchTarget}); and
 * the drain through a shared storage, on SQLite. Each runs on a fresh database and checks the
 * task counts afterwards.
 *
 * @module
 */
import {
  type Durability,
  SharedSqliteStorage,
  type Storage,
  Task,
  type Worker,
  WorkerBuilder,
} from "../mod.ts";
import type { BenchTarget } from "./_target.ts";
import {
  assertCount,
  type Email,
  email,
  freshDatabase,
  percentile,
  QUEUE,
  rate,
  round2,
  sleep,
} from "./_shared.ts";

/** Latency percentiles, in milliseconds. */
export interface Latency {
  p50: number;
  p99: number;
}

/** Awaited `storage.push(email(i))`, `n` times; tasks/s. */
export async function benchPush(target: BenchTarget, n: number): Promise<number> {
  await using temp = await target.fresh();
  const storage = temp.storage<Email>();
  const start = performance.now();
  for (let i = 0; i < n; i++) await storage.push(email(i));
  const elapsed = performance.now() - start;
  await assertCount(storage, "pending", n);
  return rate(n, elapsed);
}

/**
 * `n` tasks pushed with `pushAll` in calls of `batch`, each `Task` built with
 * `Task.builder(email(i)).build()` inside the timed region, as an application builds them;
 * tasks/s.
 */
export async function benchPushAll(
  target: BenchTarget,
  n: number,
  batch: number,
): Promise<number> {
  await using temp = await target.fresh();
  const storage = temp.storage<Email>();
  let pushed = 0;
  const start = performance.now();
  for (let first = 0; first < n; first += batch) {
    const tasks: Task<Email>[] = [];
    for (let i = first; i < Math.min(n, first + batch); i++) {
      tasks.push(Task.builder(email(i)).build());
    }
    pushed += (await storage.pushAll(tasks)).length;
  }
  const elapsed = performance.now() - start;
  if (pushed !== n) throw new Error(`pushAll returned ${pushed} ids, expected ${n}`);
  await assertCount(storage, "pending", n);
  return rate(n, elapsed);
}

/**
 * `n` preloaded no-op tasks drained by one worker at `concurrency`, from `worker.run()` until
 * the worker exited after the last ack; tasks/s.
 */
export async function benchDrain(
  target: BenchTarget,
  n: number,
  concurrency: number,
  report?: DrainReport,
): Promise<number> {
  await using temp = await target.fresh();
  const storage = temp.storage<Email>();
  await storage.pushAll(Array.from({ length: n }, (_, i) => new Task(email(i))));
  const elapsed = await drainWith(
    [{ storage, name: `bench-drain-${concurrency}` }],
    concurrency,
    n,
    `drain at concurrency ${concurrency}`,
    report,
  );
  await assertCount(storage, "done", n);
  if (report !== undefined) await assertReported(storage, report);
  return rate(n, elapsed);
}

/**
 * What each handler of a drain reports: `progress` calls `ctx.progress(100)` once per task,
 * `log` calls `ctx.log` once per task (written with the worker's flushes).
 */
export type DrainReport = "progress" | "log";

/** Checks that the reports of the drain were written (the last task's, at least). */
async function assertReported(storage: Storage<Email>, report: DrainReport): Promise<void> {
  const [last] = await storage.listTasks({ status: "done", pageSize: 1 });
  const ok = report === "progress"
    ? (await storage.fetchById(last!.id))?.progress?.value === 100
    : (await storage.logs(last!.id)).length === 1;
  if (!ok) {
    throw new Error(`drain with ${report}: the ${report} of task ${last!.id} was not written`);
  }
}

/**
 * SQLite only: `n` preloaded no-op tasks spread over `queues` queues of one
 * `SharedSqliteStorage`, each drained by a worker of its own at `concurrency`, from the workers'
 * start until all of them exited after the last ack; tasks/s.
 */
export async function benchDrainShared(
  durability: Durability,
  n: number,
  concurrency: number,
  queues: number,
): Promise<number> {
  await using temp = await freshDatabase(durability);
  const store = new SharedSqliteStorage(temp.db);
  const names = Array.from({ length: queues }, (_, q) => q === 0 ? QUEUE : `${QUEUE}-${q + 1}`);
  const storages = names.map((queue) => store.makeShared<Email>(queue));
  const perQueue = n / queues;
  for (const storage of storages) {
    await storage.pushAll(Array.from({ length: perQueue }, (_, i) => new Task(email(i))));
  }
  const elapsed = await drainWith(
    storages.map((storage, q) => ({ storage, name: `bench-shared-${q + 1}` })),
    concurrency,
    n,
    `shared drain over ${queues} queues`,
  );
  for (const [q, storage] of storages.entries()) {
    await assertCount(storage, "done", perQueue, names[q]);
  }
  return rate(n, elapsed);
}

/** The rate limit of {@linkcode benchDrainRateLimited}: starts per second. */
export const RATE_LIMIT_PER_S = 1_000;

/**
 * `n` preloaded no-op tasks drained by one worker at concurrency 16 under a rate limit of
 * {@linkcode RATE_LIMIT_PER_S} starts per second (n a multiple of it); the achieved starts per
 * second over whole windows: the n - limit starts from the first start until the first start of
 * the last window, over that time. (The last window's own burst is left out: it ends the drain,
 * not a period of the limit.)
 */
export async function benchDrainRateLimited(target: BenchTarget, n: number): Promise<number> {
  await using temp = await target.fresh();
  const storage = temp.storage<Email>();
  await storage.pushAll(Array.from({ length: n }, (_, i) => new Task(email(i))));
  await storage.setLimits({ rate: { limit: RATE_LIMIT_PER_S, perMs: 1_000 } });
  const starts: number[] = [];
  const errors: unknown[] = [];
  const worker = new WorkerBuilder("bench-rate-limited")
    .backend(storage)
    .concurrency(16)
    .handleSignals(false)
    .onEvent((_ctx, event) => {
      if (event.type === "error") errors.push(event.error);
    })
    .build(() => {
      starts.push(performance.now());
      if (starts.length === n) void worker.stop();
    });
  await worker.run();
  if (errors.length > 0) {
    throw new Error(`rate-limited drain: ${errors.length} worker errors`, { cause: errors[0] });
  }
  await assertCount(storage, "done", n);
  const lastWindow = n - RATE_LIMIT_PER_S;
  return Math.round(lastWindow * 1000 / (starts[lastWindow]! - starts[0]!));
}

/**
 * Runs a worker of no-op tasks at `concurrency` on each storage until they handled `n` tasks in
 * all, then stops them; the milliseconds from their start until all exited. Throws when a worker
 * reported errors, naming the drain as `what`.
 */
async function drainWith(
  drainers: readonly { storage: Storage<Email>; name: string }[],
  concurrency: number,
  n: number,
  what: string,
  report?: DrainReport,
): Promise<number> {
  let handled = 0;
  const errors: unknown[] = [];
  const workers: Worker<Email>[] = drainers.map(({ storage, name }) =>
    new WorkerBuilder(name)
      .backend(storage)
      .concurrency(concurrency)
      .handleSignals(false)
      .onEvent((_ctx, event) => {
        if (event.type === "error") errors.push(event.error);
      })
      .build((_email, ctx) => {
        if (report === "progress") ctx.progress(100);
        else if (report === "log") ctx.log("sent");
        if (++handled === n) { for (const worker of workers) void worker.stop(); }
      })
  );
  const start = performance.now();
  await Promise.all(workers.map((worker) => worker.run()));
  const elapsed = performance.now() - start;
  if (errors.length > 0) {
    throw new Error(`${what}: ${errors.length} worker errors`, { cause: errors[0] });
  }
  return elapsed;
}

/**
 * A worker of concurrency 1 that records, for each task, `clock()` minus the task's `pushedAt`.
 * `idle` resolves when it first waits for work, `all` after `n` samples.
 */
export function latencyWorker(
  storage: Storage<{ pushedAt: number }>,
  name: string,
  n: number,
  clock: () => number,
): {
  worker: Worker<{ pushedAt: number }>;
  latencies: number[];
  idle: Promise<void>;
  all: Promise<void>;
} {
  const latencies: number[] = [];
  let resolveIdle!: () => void;
  const idle = new Promise<void>((resolve) => resolveIdle = resolve);
  let resolveAll!: () => void;
  const all = new Promise<void>((resolve) => resolveAll = resolve);
  const worker = new WorkerBuilder(name)
    .backend(storage)
    .concurrency(1)
    .handleSignals(false)
    .onEvent((_ctx, event) => {
      if (event.type === "idle") resolveIdle();
    })
    .build((args) => {
      latencies.push(clock() - args.pushedAt);
      if (latencies.length === n) resolveAll();
    });
  return { worker, latencies, idle, all };
}

/**
 * Enqueue→start latency with an idle worker in the same process: `n` pushes 10 ms apart, each
 * stamped with `performance.now()`, which the handler subtracts; p50 and p99 in ms.
 */
export async function benchLatency(target: BenchTarget, n: number): Promise<Latency> {
  await using temp = await target.fresh();
  const storage = temp.storage<{ pushedAt: number }>();
  const { worker, latencies, idle, all } = latencyWorker(
    storage,
    "bench-latency",
    n,
    () => performance.now(),
  );
  const running = worker.run();
  try {
    await Promise.race([idle, running]);
    for (let i = 0; i < n; i++) {
      await storage.push({ pushedAt: performance.now() });
      await sleep(10);
    }
    await Promise.race([all, running]);
  } finally {
    await worker.stop();
  }
  await running;
  await assertCount(storage, "done", n);
  return summarize(latencies);
}

/** p50 and p99 of latency samples, rounded to 2 decimals. */
export function summarize(latencies: readonly number[]): Latency {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { p50: round2(percentile(sorted, 50)), p99: round2(percentile(sorted, 99)) };
}
