import { type Database, openDatabase, type OpenDatabaseOptions, SqliteStorage } from "../mod.ts";
import type { Clock } from "../mod.ts";

/** A migrated database in a fresh temp dir; disposing closes it and removes the dir. */
export interface TempDatabase extends AsyncDisposable {
  db: Database;
  dir: string;
  path: string;
}

/** Opens a migrated database file in a new temp dir. Use with `await using`. */
export async function tempDatabase(options: OpenDatabaseOptions = {}): Promise<TempDatabase> {
  const dir = await Deno.makeTempDir({ prefix: "apalis_test_" });
  const path = `${dir}/queue.db`;
  const db = openDatabase(path, options);
  SqliteStorage.setup(db);
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

/** A clock the test moves by hand. */
export class FakeClock implements Clock {
  #now: number;
  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  advance(ms: number): void {
    this.#now += ms;
  }
  set(ms: number): void {
    this.#now = ms;
  }
}

/** Polls `condition` until it holds, or throws after `timeoutMs` naming `what`. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
