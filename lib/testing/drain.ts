import type { Storage } from "../storage/storage.ts";
import { ulid } from "../storage/ulid.ts";
import type { TaskFlow } from "../worker/transition.ts";
import type { Handler } from "../worker/worker.ts";
import { WorkerBuilder } from "../worker/worker_builder.ts";
import { TestClock } from "./clock.ts";

/** Options of {@linkcode drainQueue}. */
export interface DrainOptions<T> {
  /**
   * Also run tasks scheduled later (delayed pushes, retries after their backoff): each time
   * nothing is due, the storage's {@linkcode TestClock} moves to the next task's due time. Needs
   * the storage to have been given a `TestClock`. @default {false}
   */
  withScheduled?: boolean;
  /** Tasks run at once. @default {1}: one after another, in claim order */
  concurrency?: number;
  /** Settings of the worker beyond the handler: middleware, data, retry, timeout. */
  worker?: (builder: WorkerBuilder<T>) => WorkerBuilder<T>;
  /** Gives up (rejects) after this long, in real time. @default {30000} */
  timeoutMs?: number;
}

/** What {@linkcode drainQueue} ran. */
export interface DrainResult {
  /** Attempts that ended: `done + failed + killed`. */
  ran: number;
  /** Attempts that succeeded. */
  done: number;
  /** Attempts that failed and will be retried. */
  failed: number;
  /** Attempts that killed their task (out of attempts, or an `AbortError`). */
  killed: number;
  /** The errors of the failed and killed attempts, in order. */
  errors: unknown[];
}

/**
 * Runs the queue's due tasks with `handler` (or a workflow) in this process until none is left
 * due, then returns what ran: for tests that check what a handler does to the database, without
 * starting a worker and waiting for it. Tasks the handler pushes to the same queue run too; a
 * failed attempt's retry runs if it is due (with a {@linkcode TestClock} standing still, a
 * backoff keeps it waiting: pass `withScheduled`). The ticks of the queue's cron schedules that
 * are due by the storage's clock are enqueued first: to test a schedule, advance a `TestClock`
 * past its tick and drain (`withScheduled` moves the clock to tasks, never to the next tick).
 *
 * @example Usage
 * ```ts
 * import { drainQueue, tempDatabase } from "@apalis/sqlite/testing";
 *
 * await using db = await tempDatabase();
 * const emails = db.storage<{ to: string }>("email");
 * await emails.push({ to: "a@b.c" });
 * await emails.push({ to: "bad" });
 * const sent: string[] = [];
 * const result = await drainQueue(emails, ({ to }) => {
 *   if (!to.includes("@")) throw new Error(`bad address: ${to}`);
 *   sent.push(to);
 * });
 * if (result.done !== 1 || result.failed !== 1 || sent[0] !== "a@b.c") throw new Error("unexpected");
 * ```
 */
export async function drainQueue<T>(
  storage: Storage<T>,
  handler: Handler<T> | TaskFlow<T>,
  options: DrainOptions<T> = {},
): Promise<DrainResult> {
  const { withScheduled = false, concurrency = 1, timeoutMs = 30_000 } = options;
  const clock = storage.clock;
  if (withScheduled && !(clock instanceof TestClock)) {
    throw new TypeError(
      "Cannot drain with 'withScheduled': the storage's clock is not a TestClock (create the storage with { clock: new TestClock() })",
    );
  }
  const result: DrainResult = { ran: 0, done: 0, failed: 0, killed: 0, errors: [] };
  const deadline = Date.now() + timeoutMs;
  while (true) {
    // Cron ticks due by the storage's clock first: a worker's own look at its schedules runs
    // beside its claims and could come after the queue looked idle.
    await storage.enqueueDueSchedules();
    await runUntilIdle(storage, handler, options, concurrency, deadline, result);
    if (!withScheduled) return result;
    const next = await nextDueAt(storage);
    if (next === undefined) return result;
    const test = clock as TestClock;
    if (next > test.now()) test.set(next);
  }
}

/** One worker's run, stopped at its first idle moment (nothing due, nothing running). */
async function runUntilIdle<T>(
  storage: Storage<T>,
  handler: Handler<T> | TaskFlow<T>,
  options: DrainOptions<T>,
  concurrency: number,
  deadline: number,
  result: DrainResult,
): Promise<void> {
  let idle!: () => void;
  const drained = new Promise<void>((resolve) => idle = resolve);
  let builder = new WorkerBuilder(`drain-${ulid()}`).backend(storage).concurrency(concurrency)
    // Nothing runs once the queue is idle; a stop then comes from the timeout: make it quick.
    .handleSignals(false).shutdownTimeout(100).onEvent((_ctx, event) => {
      if (event.type === "idle") idle();
      else if (event.type === "success") {
        result.ran++;
        result.done++;
      } else if (event.type === "error" && event.task && event.status) {
        result.ran++;
        result[event.status]++;
        result.errors.push(event.error);
      }
    });
  if (options.worker) builder = options.worker(builder);
  const worker = builder.build(handler);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), Math.max(0, deadline - Date.now()));
  });
  const running = worker.run();
  try {
    const outcome = await Promise.race([drained, timedOut, running]);
    if (outcome === "timeout") {
      throw new Error(
        `Cannot drain queue '${storage.queue}': tasks were still due or running after ${
          options.timeoutMs ?? 30_000
        } ms (a handler that never settles, or tasks that keep enqueuing more)`,
      );
    }
  } finally {
    clearTimeout(timer);
    await worker.stop();
  }
  await running;
}

/** When the queue's next waiting task (pending, or failed awaiting its retry) falls due. */
async function nextDueAt<T>(storage: Storage<T>): Promise<number | undefined> {
  let next: number | undefined;
  for (const status of ["pending", "failed"] as const) {
    for (let page = 1;; page++) {
      const tasks = await storage.listTasks({
        queue: storage.queue,
        status,
        page,
        pageSize: 500,
        previewBytes: 0,
      });
      for (const task of tasks) if (next === undefined || task.runAt < next) next = task.runAt;
      if (tasks.length < 500) break;
    }
  }
  return next;
}
