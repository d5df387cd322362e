// deno-lint-ignore-file no-console
/**
 * The seed's "Basic Worker": push 10 delayed tasks in one transaction, then run a worker that
 * handles them and stops after the 10th.
 *
 * Run with `deno run -A examples/basic.ts` or `bun run examples/basic.ts`.
 *
 * @module
 */
import { openDatabase, SqliteStorage, Task, type TaskContext, WorkerBuilder } from "../mod.ts";

const db = openDatabase(":memory:");
SqliteStorage.setup(db);
const backend = new SqliteStorage<number>(db, "reminders");

// The seed builds its tasks with a stream; a generator does the same here.
function* reminders(count: number): Generator<Task<number>> {
  for (let i = 1; i <= count; i++) {
    yield Task.builder(i).runAfter(1000).priority(1).maxAttempts(5).build();
  }
}
const ids = await backend.pushAll(reminders(10));
console.log(`pushed ${ids.length} tasks, due in 1 s`);

let handled = 0;
function sendReminder(item: number, ctx: TaskContext): string {
  handled++;
  console.log(`reminder ${item} sent (task ${ctx.taskId}, attempt ${ctx.attempt})`);
  if (handled === 10) ctx.worker.stop(); // a real worker keeps running until SIGINT/SIGTERM
  return `reminder ${item} sent`;
}

const worker = new WorkerBuilder("worker-1")
  .backend(backend)
  .build(sendReminder);
await worker.run();

const stats = await backend.stats();
console.log(`done: ${stats.done} of ${stats.total}`);
db.close();
