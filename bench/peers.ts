/**
 * The queue beside its JavaScript peers that keep jobs in SQLite, on the same machine, runtime
 * and kind of file: `deno run -A bench/peers.ts` or `bun run bench/peers.ts`.
 *
 * - **plainjob** 0.0.14 (npm `plainjob`; bun:sqlite under Bun, node:sqlite under Deno through a
 *   pass-through connection in better-sqlite3's shape, which it supports): WAL and
 *   `synchronous = NORMAL`, set by the library itself. Its worker runs one job at a time.
 * - **bunqueue** 2.9.5 (npm `bunqueue`; Bun only, embedded with a `dataPath`): an in-memory
 *   broker that writes to SQLite behind a buffer (a hard crash loses its last ~10 ms of writes),
 *   so its figures are not durable ones. Worker at concurrency 16.
 * - **apalis-sqlite** (this repository) with its defaults: `durability: "normal"`
 *   (`synchronous = NORMAL`), a push resolves after its commit. Worker at concurrency 16.
 *
 * Each library runs the same four scenarios on a fresh file in a temp dir, every job carrying a
 * small object (`{ n: i, to: "user@example.com" }`) made inside the timed region: 10,000 jobs
 * added one by one (awaited where the API is async), 50,000 added in calls of 1,000 and in one
 * call, and a drain of 50,000 preloaded no-op jobs from the worker's start until the last job is
 * recorded done (then the count of done jobs is checked). The figures are jobs per second, the median of `--runs`
 * (default 3). The peers are fetched from the npm registry at their pinned versions on first use
 * (Deno: `npm:` specifiers; Bun: auto-install), so the run needs it once.
 *
 * @module
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { benchDrain, benchPush, benchPushAll } from "./scenarios.ts";
import { type Email, email, median, progress, rate, runtimeName } from "./_shared.ts";
import { sqliteTarget } from "./_target.ts";

const PUSH = 10_000;
const BULK = 50_000;
/** The jobs per call of the batched bulk add. */
const BATCH = 1000;
const DRAIN = 50_000;
const IS_BUN = "Bun" in globalThis;
const fmt = (n: number) => n.toLocaleString("en");

/** One library's figures, jobs/s. */
interface PeerFigures {
  push: number;
  /** `BULK` jobs in calls of `BATCH`. */
  batched: number;
  /** `BULK` jobs in one call. */
  bulk: number;
  drain: number;
}

/** A library under test: how it runs each scenario once, on a fresh file. */
interface Peer {
  name: string;
  setting: string;
  push(n: number): Promise<number>;
  /** Adds `n` jobs in calls of `batch`. */
  bulk(n: number, batch: number): Promise<number>;
  drain(n: number): Promise<number>;
}

// The parts of the peers' APIs this file uses (they are loaded at run time).
interface PlainjobStatement {
  run(...params: unknown[]): { changes: number | bigint; lastInsertRowid: number | bigint };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}
/** better-sqlite3's transaction function: call it, or one of its variants, to run `F` in one. */
type PlainjobTransaction<F> = F & { deferred: F; immediate: F; exclusive: F };
interface PlainjobConnection {
  driver: "bun:sqlite" | "better-sqlite3";
  filename: string;
  pragma(statement: string): void;
  exec(sql: string): void;
  prepare(sql: string): PlainjobStatement;
  transaction<F extends (...args: never[]) => unknown>(fn: F): PlainjobTransaction<F>;
  close(): void;
}
interface PlainjobQueue {
  add(type: string, data: unknown): { id: number };
  addMany(type: string, data: unknown[]): { ids: number[] };
  countJobs(options?: { type?: string; status?: number }): number;
  close(): void;
}
interface Plainjob {
  defineQueue(options: { connection: PlainjobConnection; logger?: unknown }): PlainjobQueue;
  defineWorker(
    type: string,
    processor: (job: unknown) => Promise<void>,
    options: { queue: PlainjobQueue; logger?: unknown },
  ): { start(): Promise<void>; stop(): Promise<void> };
  bun(database: unknown): PlainjobConnection;
  JobStatus: { Done: number };
}
interface BunqueueQueue {
  add(name: string, data: unknown): Promise<unknown>;
  addBulk(jobs: { name: string; data: unknown }[]): Promise<unknown[]>;
  close(): Promise<void>;
}
interface Bunqueue {
  Queue: new (name: string, options: { embedded: true; dataPath: string }) => BunqueueQueue;
  Worker: new (
    name: string,
    processor: (job: unknown) => Promise<unknown>,
    options: { embedded: true; concurrency: number },
  ) => { close(): Promise<void> };
  /** Closes the process's one embedded broker, so the next run can open another file. */
  shutdownManager(): void;
}

const quiet = { error() {}, warn() {}, info() {}, debug() {} };

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(os.tmpdir(), "apalis_peers_"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Jobs per second of `work`, which handles `n` jobs. */
async function jobsPerSecond(n: number, work: () => unknown): Promise<number> {
  const start = performance.now();
  await work();
  return rate(n, performance.now() - start);
}

/** A handler that counts calls, and a promise that resolves at the `n`th. */
function countdown(n: number): { tick(): void; done: Promise<void> } {
  let calls = 0;
  let resolve!: () => void;
  const done = new Promise<void>((r) => resolve = r);
  return { tick: () => void (++calls === n && resolve()), done };
}

/** node:sqlite in the shape of better-sqlite3's database, as far as plainjob uses it. */
async function nodeSqliteConnection(path: string): Promise<PlainjobConnection> {
  const { DatabaseSync } = await import("node:sqlite");
  const db = new DatabaseSync(path);
  return {
    driver: "better-sqlite3",
    filename: path,
    pragma: (statement) => db.exec(`PRAGMA ${statement}`),
    exec: (sql) => db.exec(sql),
    // Called as methods (statement.run(…)), with plainjob's named or positional parameters.
    prepare: (sql) => db.prepare(sql) as unknown as PlainjobStatement,
    transaction<F extends (...args: never[]) => unknown>(fn: F): PlainjobTransaction<F> {
      const run = (begin: string) => (...args: never[]) => {
        db.exec(begin);
        try {
          const result = fn(...args);
          db.exec("COMMIT");
          return result;
        } catch (error) {
          db.exec("ROLLBACK");
          throw error;
        }
      };
      return Object.assign(run("BEGIN"), {
        deferred: run("BEGIN DEFERRED"),
        immediate: run("BEGIN IMMEDIATE"),
        exclusive: run("BEGIN EXCLUSIVE"),
      }) as unknown as PlainjobTransaction<F>;
    },
    close: () => db.close(),
  };
}

async function plainjobPeer(): Promise<Peer> {
  const plainjob: Plainjob = await import(IS_BUN ? "plainjob@0.0.14" : "npm:plainjob@0.0.14");
  const open = async (dir: string) => {
    const path = join(dir, "plainjob.db");
    let connection: PlainjobConnection;
    if (IS_BUN) {
      const { Database } = await import("bun:sqlite" as string);
      connection = plainjob.bun(new Database(path, { strict: true }));
    } else {
      connection = await nodeSqliteConnection(path);
    }
    return plainjob.defineQueue({ connection, logger: quiet });
  };
  const countDone = (queue: PlainjobQueue, n: number) => {
    const done = queue.countJobs({ status: plainjob.JobStatus.Done });
    if (done !== n) throw new Error(`plainjob: ${done} of ${n} jobs done`);
  };
  return {
    name: "plainjob 0.0.14",
    setting:
      "WAL, synchronous NORMAL; a synchronous add; the worker claims and acks one job at a time",
    push: (n) =>
      withDir(async (dir) => {
        const queue = await open(dir);
        const speed = await jobsPerSecond(n, () => {
          for (let i = 0; i < n; i++) queue.add("noop", email(i));
        });
        queue.close();
        return speed;
      }),
    bulk: (n, batch) =>
      withDir(async (dir) => {
        const queue = await open(dir);
        const speed = await jobsPerSecond(n, () => {
          for (let first = 0; first < n; first += batch) {
            const data: Email[] = [];
            for (let i = first; i < Math.min(n, first + batch); i++) data.push(email(i));
            queue.addMany("noop", data);
          }
        });
        queue.close();
        return speed;
      }),
    drain: (n) =>
      withDir(async (dir) => {
        const queue = await open(dir);
        queue.addMany("noop", Array.from({ length: n }, (_, i) => email(i)));
        const handled = countdown(n);
        const worker = plainjob.defineWorker("noop", () => {
          handled.tick();
          return Promise.resolve();
        }, { queue, logger: quiet });
        let running!: Promise<void>;
        const speed = await jobsPerSecond(n, async () => {
          running = worker.start();
          await handled.done;
          // The worker marks a job done right after its handler settles: one turn later.
          await new Promise((resolve) => setTimeout(resolve, 0));
        });
        await worker.stop();
        await running;
        countDone(queue, n);
        queue.close();
        return speed;
      }),
  };
}

async function bunqueuePeer(): Promise<Peer> {
  const bunqueue: Bunqueue = await import("bunqueue@2.9.5/client" as string);
  // One embedded broker per process, bound to the first file it opened.
  const withBroker = <T>(fn: (dataPath: string) => Promise<T>) =>
    withDir(async (dir) => {
      try {
        return await fn(join(dir, "bunqueue.db"));
      } finally {
        bunqueue.shutdownManager();
      }
    });
  return {
    name: "bunqueue 2.9.5",
    setting: "embedded; an add resolves before its SQLite write (buffered, ~10 ms)",
    push: (n) =>
      withBroker(async (dataPath) => {
        const queue = new bunqueue.Queue("bench", { embedded: true, dataPath });
        const speed = await jobsPerSecond(n, async () => {
          for (let i = 0; i < n; i++) await queue.add("noop", email(i));
        });
        await queue.close();
        return speed;
      }),
    bulk: (n, batch) =>
      withBroker(async (dataPath) => {
        const queue = new bunqueue.Queue("bench", { embedded: true, dataPath });
        const speed = await jobsPerSecond(n, async () => {
          for (let first = 0; first < n; first += batch) {
            const jobs: { name: string; data: Email }[] = [];
            for (let i = first; i < Math.min(n, first + batch); i++) {
              jobs.push({ name: "noop", data: email(i) });
            }
            await queue.addBulk(jobs);
          }
        });
        await queue.close();
        return speed;
      }),
    drain: (n) =>
      withBroker(async (dataPath) => {
        const queue = new bunqueue.Queue("bench", { embedded: true, dataPath });
        await queue.addBulk(
          Array.from({ length: n }, (_, i) => ({ name: "noop", data: email(i) })),
        );
        const handled = countdown(n);
        let worker!: { close(): Promise<void> };
        const speed = await jobsPerSecond(n, async () => {
          worker = new bunqueue.Worker("bench", () => {
            handled.tick();
            return Promise.resolve(null);
          }, { embedded: true, concurrency: 16 });
          await handled.done;
        });
        await worker.close();
        await queue.close();
        return speed;
      }),
  };
}

const apalisPeer: Peer = {
  name: "apalis-sqlite (this repository)",
  setting: 'durability "normal" (synchronous NORMAL); a push resolves after its commit',
  push: (n) => benchPush(sqliteTarget("normal"), n),
  bulk: (n, batch) => benchPushAll(sqliteTarget("normal"), n, batch),
  drain: (n) => benchDrain(sqliteTarget("normal"), n, 16),
};

async function measure(peer: Peer, runs: number): Promise<PeerFigures> {
  // A small warm-up of each scenario: the JIT and the statement caches, not the disk.
  await peer.push(PUSH / 10);
  await peer.bulk(BULK / 10, BATCH);
  await peer.bulk(BULK / 10, BULK / 10);
  await peer.drain(DRAIN / 10);
  const figures: Record<keyof PeerFigures, number[]> = {
    push: [],
    batched: [],
    bulk: [],
    drain: [],
  };
  for (let run = 0; run < runs; run++) {
    figures.push.push(await peer.push(PUSH));
    figures.batched.push(await peer.bulk(BULK, BATCH));
    figures.bulk.push(await peer.bulk(BULK, BULK));
    figures.drain.push(await peer.drain(DRAIN));
    progress(`  ${peer.name}, run ${run + 1}: ${JSON.stringify(figures)}`);
  }
  return {
    push: median(figures.push),
    batched: median(figures.batched),
    bulk: median(figures.bulk),
    drain: median(figures.drain),
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { runs: { type: "string", default: "3" } },
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) {
    throw new TypeError(`--runs must be a whole number >= 1: current value is ${values.runs}`);
  }
  const peers = [apalisPeer, await plainjobPeer()];
  if (IS_BUN) peers.push(await bunqueuePeer());
  const rows: string[] = [];
  for (const peer of peers) {
    progress(`measuring ${peer.name} (${runtimeName()})`);
    const { push, batched, bulk, drain } = await measure(peer, runs);
    rows.push(
      `| ${peer.name} | ${fmt(push)} | ${fmt(batched)} | ${fmt(bulk)} | ${
        fmt(drain)
      } | ${peer.setting} |`,
    );
  }
  const lines = [
    `${runtimeName()}, ${os.cpus().length} cores; jobs/s, median of ${runs} runs`,
    "",
    `| library | add one by one (${fmt(PUSH)}) | add ${fmt(BULK)} in calls of ${fmt(BATCH)} | add ${
      fmt(BULK)
    } in one call | drain ${fmt(DRAIN)} no-op jobs | setting |`,
    "| --- | ---: | ---: | ---: | ---: | --- |",
    ...rows,
  ];
  if (!IS_BUN) lines.push("", "bunqueue runs only under Bun: `bun run bench/peers.ts`.");
  await new Promise<void>((resolve) =>
    process.stdout.write(`${lines.join("\n")}\n`, () => resolve())
  );
  process.exit(0); // a peer's timers (maintenance, flushes) may outlive its close()
}
