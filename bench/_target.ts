/**
 * What the backend-neutral scenarios (`scenarios.ts`, `processes.ts`) need of the database they
 * measure: a fresh database per scenario, the way a child process opens it again, and the raw
 * ceiling's drain by several processes. `sqliteTarget` is SQLite's; PostgreSQL's is in
 * `pg_target.ts`, loaded only by `--backend postgres`.
 *
 * @module
 */
import { type Durability, openDatabase, SqliteStorage, type Storage } from "../mod.ts";
import { freshDatabase, QUEUE, tempDir } from "./_shared.ts";
import type { BackendName } from "./_report.ts";
import { ceilingAssertDrained, ceilingClaimAck, ceilingDrain, ceilingPreload } from "./ceiling.ts";

/** Storages of a database's queues, on one connection. */
export interface QueueStorages {
  /** A storage of `queue` (the benchmark's queue by default). */
  storage<T>(queue?: string): Storage<T>;
}

/** An open database of the benchmark. */
export interface BenchConnection extends QueueStorages {
  close(): Promise<void>;
}

/** A fresh, set-up database; disposing closes it and removes it. */
export interface BenchDatabase extends QueueStorages, AsyncDisposable {
  /** What a child process opens: the file's path, or the database's URL. */
  location: string;
}

/** The raw ceiling's table, preloaded; disposing removes it. */
export interface RawTable extends AsyncDisposable {
  /** What a child process connects to. */
  location: string;
  /** Throws unless every row is done. */
  assertDrained(): Promise<void>;
}

/** One process's connection to a raw ceiling's table. */
export interface RawDrainer {
  /** Claims `CEILING_BATCH` rows and acks them, until none is left; how many it acked. */
  drain(worker: string): Promise<number>;
  close(): Promise<void>;
}

/** The raw ceiling's drain by several processes: claim 100, ack them, until none is left. */
export interface RawDrain {
  /** A fresh table of `n` due rows. */
  preload(n: number): Promise<RawTable>;
  /** A process's warm-up before it joins (on a table of its own, of `n` rows). */
  warmUp(n: number): Promise<void>;
  /** Connects to the table at `location` (a child's side). */
  connect(location: string): Promise<RawDrainer>;
}

/** The database the benchmark measures. */
export interface BenchTarget {
  readonly backend: BackendName;
  /** SQLite: the file's durability; PostgreSQL: `full` (fsync and synchronous_commit on). */
  readonly durability: Durability;
  /** A fresh, set-up database for one scenario. */
  fresh(): Promise<BenchDatabase>;
  /** Opens the database at `location` (a child's side). */
  open(location: string): Promise<BenchConnection>;
  /** The flags that make a child process (`bench.ts` with a hidden mode) use this target. */
  readonly childFlags: readonly string[];
  readonly raw: RawDrain;
}

/** The batch of the raw ceiling's drain by several processes. */
export const CEILING_BATCH = 100;

/** SQLite files in the temp dir, opened with `durability`. */
export function sqliteTarget(durability: Durability): BenchTarget {
  return {
    backend: "sqlite",
    durability,
    async fresh() {
      const temp = await freshDatabase(durability);
      return {
        location: temp.path,
        storage: <T>(queue = QUEUE) => new SqliteStorage<T>(temp.db, queue),
        [Symbol.asyncDispose]: () => temp[Symbol.asyncDispose](),
      };
    },
    open(location) {
      const db = openDatabase(location, { durability });
      return Promise.resolve({
        storage: <T>(queue = QUEUE) => new SqliteStorage<T>(db, queue),
        close: () => Promise.resolve(db.close()),
      });
    },
    childFlags: ["--durability", durability],
    raw: {
      async preload(n) {
        const dir = await tempDir();
        const path = `${dir.path}/raw.db`;
        const db = openDatabase(path, { durability });
        const dispose = async () => {
          db.close();
          await dir[Symbol.asyncDispose]();
        };
        try {
          ceilingPreload(db, n);
        } catch (error) {
          await dispose();
          throw error;
        }
        return {
          location: path,
          assertDrained: () => Promise.resolve(ceilingAssertDrained(db)),
          [Symbol.asyncDispose]: dispose,
        };
      },
      async warmUp(n) {
        await ceilingClaimAck(durability, n, CEILING_BATCH);
      },
      connect(location) {
        // A connection waits for the lock in SQLite's busy handler, as a bare SQLite program would.
        const db = openDatabase(location, { durability, busyTimeoutMs: 60_000 });
        return Promise.resolve({
          drain: (worker) => Promise.resolve(ceilingDrain(db, worker, CEILING_BATCH)),
          close: () => Promise.resolve(db.close()),
        });
      },
    },
  };
}
