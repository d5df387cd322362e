// deno-lint-ignore-file no-console
/**
 * The seed's "Event-Driven Worker (Hooked)" example, translated: a storage on its own connection
 * (`newWithCallback`), a slow 5 s interval poll as the fallback, and 20 tasks pushed 2 s after
 * the worker started. They start the moment they are due (1 s after the push), highest priority
 * first, without waiting for a poll.
 *
 * Run: `deno run -A examples/hooked.ts` or `bun run examples/hooked.ts`.
 */
import {
  Config,
  IntervalStrategy,
  SqliteStorage,
  StrategyBuilder,
  Task,
  type TaskContext,
  WorkerBuilder,
} from "../mod.ts";

const lazyStrategy = new StrategyBuilder().apply(new IntervalStrategy(5000)).build();
const config = new Config("queue").withPollInterval(lazyStrategy).setBufferSize(5);
const backend = SqliteStorage.newWithCallback<number>(":memory:", config);
SqliteStorage.setup(backend.db);

let pushedAt = 0;
setTimeout(async () => {
  const items = Array.from(
    { length: 20 },
    (_, i) => Task.builder(i + 1).runAfter(1000).priority(i + 1).build(),
  );
  await backend.pushAll(items);
  pushedAt = Date.now();
  console.log("pushed 20 tasks, due in 1 s");
}, 2000);

const order: number[] = [];
function sendReminder(item: number, ctx: TaskContext): void {
  order.push(item);
  if (order.length === 1) {
    console.log(`first task started ${Date.now() - pushedAt} ms after the push`);
  }
  if (order.length === 20) ctx.worker.stop();
}

const worker = new WorkerBuilder("worker-2").backend(backend).build(sendReminder);
await worker.run();
console.log(`order: ${order.join(" ")}`);
backend.db.close();
