import { type Database, openDatabase, type OpenDatabaseOptions, SqliteStorage } from "../mod.ts";
import { type Worker, WorkerBuilder } from "../mod.ts";
import { TestClock } from "../testing.ts";

export { waitUntil } from "./_wait.ts";

/** A migrated database in a fresh temp dir; disposing closes it and removes the dir. */
export interface TempDatabase extends AsyncDisposable {
  db: Database;
  dir: string;
  path: string;
}

/**
 * Opens a migrated database file (an empty one with `setup: false`) in a new temp dir. Use with
 * `await using`.
 */
export async function tempDatabase(
  options: OpenDatabaseOptions & { setup?: boolean } = {},
): Promise<TempDatabase> {
  const dir = await Deno.makeTempDir({ prefix: "apalis_test_" });
  const path = `${dir}/queue.db`;
  const { setup = true, ...openOptions } = options;
  const db = openDatabase(path, openOptions);
  if (setup) SqliteStorage.setup(db);
  return {
    db,
    dir,
    path,
    async [Symbol.asyncDispose]() {
      db.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** The users' TestClock, starting at a fixed time (2026-01-01 UTC) unless told otherwise. */
export class FakeClock extends TestClock {
  constructor(start: number = Date.UTC(2026, 0, 1)) {
    super(start);
  }
}

/** Runs `worker` until every one of `ids` has finished on `storage`, then stops it. */
export async function runUntilFinished<T>(
  worker: Worker<T>,
  storage: SqliteStorage<T>,
  ids: readonly string[],
  timeoutMs = 10_000,
): Promise<void> {
  const running = worker.run();
  try {
    await storage.waitFor(ids, { timeoutMs });
  } finally {
    await worker.stop();
    await running;
  }
}

/**
 * A worker of concurrency 1 over number tasks that runs them at once, except task `blockAt`,
 * which waits for `release.open()`; `blocked` opens when that task starts. Meanwhile the worker
 * claims ahead at the pace of the quick tasks before it.
 */
export function workerBlockedAt(
  storage: SqliteStorage<number>,
  name: string,
  blockAt: number,
): { worker: Worker<number>; blocked: Promise<void>; release: () => void } {
  const release = gate();
  const blocked = gate();
  const worker = new WorkerBuilder(name)
    .backend(storage)
    .concurrency(1)
    .handleSignals(false)
    .build(async (n) => {
      if (n === blockAt) {
        blocked.open();
        await release.promise;
      }
    });
  return { worker, blocked: blocked.promise, release: release.open };
}

/** A promise with its resolver: a handler awaits `promise` until the test calls `open()`. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => open = resolve);
  return { promise, open };
}

/** The same connection, counting its transactions (each flush of a worker is one). */
export function countingTransactions(db: Database): { db: Database; count: () => number } {
  let transactions = 0;
  const counted = new Proxy(db, {
    get(target, key) {
      if (key === "transaction") {
        return <T>(fn: () => T): T => {
          transactions++;
          return target.transaction(fn);
        };
      }
      const value = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { db: counted, count: () => transactions };
}
