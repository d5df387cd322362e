// deno-lint-ignore-file no-console
/**
 * The seed's "Shared Storage (Multiple Job Types)" example, translated: two job types over one
 * SQLite connection, each with its own worker, fed by one shared fetcher.
 *
 * Run: `deno run -A examples/shared.ts` or `bun run examples/shared.ts`.
 */
import { SharedSqliteStorage, SqliteStorage, type TaskContext, WorkerBuilder } from "../mod.ts";

const store = new SharedSqliteStorage(":memory:");
SqliteStorage.setup(store.db);

const mapStore = store.makeShared<Record<string, string>>("maps");
const intStore = store.makeShared<number>("ints");

await mapStore.pushStream([{}]);
await intStore.push(99);

async function sendReminder(args: unknown, ctx: TaskContext): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 2000));
  ctx.worker.stop();
  console.log(`Reminder sent! (${ctx.queue}: ${JSON.stringify(args)}, task ${ctx.taskId})`);
}

const intWorker = new WorkerBuilder("rango-tango-2").backend(intStore).build(sendReminder);
const mapWorker = new WorkerBuilder("rango-tango-1").backend(mapStore).build(sendReminder);
await Promise.all([intWorker.run(), mapWorker.run()]);

const stats = await intStore.stats();
console.log(`done: ${stats.done} of ${stats.total}, claims: ${store.fetcher.claims}`);
store.db.close();
