/**
 * The PostgreSQL chaos drill shared by `chaos_test.ts` (CI size) and `tests/soak/chaos_soak.ts`
 * (the issue's 50,000 tasks): worker processes posing as different hosts drain one queue while
 * the driver of `tests/e2e/chaos_drill.ts` kills a random one with SIGKILL every few seconds
 * and starts a replacement on the same "host", and restarts the PostgreSQL server once
 * mid-drain; then every task is accounted for.
 *
 * The workers are the conformance suite's `worker_child.ts` (public API only), each with
 * `--host host-N` for its place N (`WorkerBuilder.host`: liveness on PostgreSQL is heartbeat age
 * alone, so a name on another host is as alive as its heartbeat), and with its own
 * `application_name` (`chaos-<serial>`) so that the driver sees when a killed process's sessions
 * are gone: from then on nothing it sent can commit, and what its name holds is exactly what it
 * held at its death. A replacement under the victim's name starts once its heartbeat is stale
 * (PostgreSQL refuses the name before); the survivors' heartbeats rescue a dead worker's tasks
 * after the same delay.
 *
 * Each handler start is appended to a file of its own process (one `write(2)` per line), so that
 * executions are counted outside the database, across the restart and the kills.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Task } from "../../mod.ts";
import { PostgresStorage } from "../../postgres.ts";
import type { TempPostgres } from "../_postgres.ts";
import { type ChildWorker, spawnChild } from "./_child.ts";
import { countStarts, runDrill } from "../e2e/chaos_drill.ts";

/** What to run. */
export interface PgChaosOptions {
  /** Tasks to push, then drain. */
  total: number;
  /** Worker processes (and hosts) at any time. */
  workers: number;
  /** `--concurrency` of each worker. */
  concurrency: number;
  /** `--buffer-size` of each worker: the most tasks it claims ahead of its free slots. */
  bufferSize: number;
  /** What each handler sleeps: keeps handlers in flight when a kill lands. */
  sleepMs: number;
  /** A kill every `[min, max)` ms, uniformly at random. */
  killEveryMs: readonly [number, number];
  /** Heartbeat period. */
  keepAliveMs: number;
  /**
   * A worker whose heartbeat is this old is dead: how soon a killed worker's tasks are rescued
   * and its name is free again. Longer than the restart's outage (the server down, then the
   * clients' reconnect backoff), or live workers would be declared dead.
   */
  orphanAfterMs: number;
  /** The server restarts once this share of the tasks is done. */
  restartAtDone: number;
  /** The drill fails if it has not drained after this long. */
  timeoutMs: number;
  /** The drill fails with fewer kills than this (the chaos did not happen). */
  minKills: number;
}

/** What happened. */
export interface PgChaosReport {
  total: number;
  durationMs: number;
  kills: number;
  /** Replacements that took the victim's name / a fresh one. */
  sameName: number;
  freshName: number;
  /** Tasks done when the restart began and when the server answered again. */
  doneAtRestart: number;
  doneAfterRestart: number;
  /** How long `pg_ctl restart` took. */
  restartMs: number;
  /** Workers alive at the restart (a place may be waiting for its replacement). */
  aliveAtRestart: number;
  /** Those that reported the outage on stderr (it was felt). */
  reportedOutage: number;
  /** `running` under the victims' names once each was dead: all a kill can cost. */
  heldAtKills: number;
  /** Handler starts of attempts that a later attempt superseded (from the start logs). */
  reRuns: number;
  /** The most re-runs one killed process caused. */
  maxReRunsPerKill: number;
  /** Σ (attempts − 1): also counts attempts the victims had started but not yet handed over. */
  extraAttempts: number;
}

const QUEUE = "chaos";
const PUSH_CHUNK = 10_000;
/** What a worker alive during the restart may print: operations that failed meanwhile. */
const OUTAGE_LINE = /^worker \S+ \(pid \d+\) worker: PostgresOperationError: Cannot /;

/**
 * The drill's shape, shared by the CI test and the soak (which differ in size): 4 processes of 8
 * handlers that take >= 20 ms each (at most 1,600 tasks/s) and claim up to 8 ahead, a kill every
 * 1-3 s, heartbeats every 500 ms, dead after 5 s of silence, the restart at 40 % done.
 */
export const PG_CHAOS_DRILL = {
  workers: 4,
  concurrency: 8,
  bufferSize: 8,
  sleepMs: 20,
  killEveryMs: [1_000, 3_000],
  keepAliveMs: 500,
  orphanAfterMs: 5_000,
  restartAtDone: 0.4,
} as const satisfies Partial<PgChaosOptions>;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The host name the workers of place `slot` register under. */
function hostOf(slot: number): string {
  return `host-${slot + 1}`;
}

/** The `application_name` of the process with serial number `serial`. */
function sessionOf(serial: number): string {
  return `chaos-${serial}`;
}

/**
 * Pushes `total` tasks, runs the drill, asserts that every task is done, that none ran more
 * often than the kills explain, and that the kills and the restart happened; returns the numbers.
 */
export async function runPgChaos(
  db: TempPostgres,
  options: PgChaosOptions,
): Promise<PgChaosReport> {
  const { total, orphanAfterMs } = options;
  const { sql } = db.pg;
  const dir = await Deno.makeTempDir({ prefix: "apalis_pg_chaos_" });
  try {
    const storage = new PostgresStorage<{ n: number }>(db.pg, QUEUE);
    for (let from = 0; from < total; from += PUSH_CHUNK) {
      const size = Math.min(PUSH_CHUNK, total - from);
      await storage.pushAll(
        Array.from({ length: size }, (_, i) => Task.builder({ n: from + i }).build()),
      );
    }
    const args = [
      "--queue",
      QUEUE,
      "--concurrency",
      String(options.concurrency),
      "--buffer-size",
      String(options.bufferSize),
      "--sleep-ms",
      String(options.sleepMs),
      "--keep-alive-ms",
      String(options.keepAliveMs),
      "--orphan-after-ms",
      String(orphanAfterMs),
    ];
    /** The driver's queries, tried again while the server restarts. */
    const query = async <T>(what: string, run: () => Promise<T>): Promise<T> => {
      const deadline = Date.now() + 60_000;
      while (true) {
        try {
          return await run();
        } catch (error) {
          if (Date.now() > deadline) throw new Error(`Cannot ${what}: ${error}`);
          await sleep(100);
        }
      }
    };
    const doneCount = () =>
      query("count done tasks", async () => {
        const [row] = await sql<{ n: number }[]>`
          SELECT count(*) AS n FROM apalis_tasks WHERE queue = ${QUEUE} AND status = 'done'`;
        return row!.n;
      });
    const postmasterStart = () =>
      query("read the server's start time", async () => {
        const [row] = await sql<{ at: string }[]>`SELECT pg_postmaster_start_time()::text AS at`;
        return row!.at;
      });
    const startedAt = await postmasterStart();
    const children = new Map<number, ChildWorker>();
    let doneAtRestart = -1;
    let doneAfterRestart = -1;
    let restartMs = -1;

    const run = await runDrill({
      spawn: ({ name, slot, serial, log }) => {
        const child = spawnChild(`${db.url}?application_name=${sessionOf(serial)}`, name, [
          "--host",
          hostOf(slot),
          ...args,
          "--record",
          log,
        ]);
        children.set(child.pid, child);
        return { pid: child.pid, kill: (signal) => child.kill(signal), exit: child.exited };
      },
      drained: () =>
        query("check for unfinished tasks", async () => {
          const [row] = await sql<{ left: boolean }[]>`
            SELECT EXISTS (SELECT 1 FROM apalis_tasks WHERE queue = ${QUEUE}
                             AND status IN ('pending','failed','queued','running')) AS left`;
          return !row!.left;
        }),
      describe: async () => JSON.stringify(await storage.stats(QUEUE)),
      heldAfterKill: async (victim) => {
        const session = sessionOf(victim.serial);
        const deadline = Date.now() + 30_000;
        while (true) {
          const [row] = await query("count the victim's sessions", () =>
            sql<{ n: number }[]>`
              SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = ${session}`);
          if (row!.n === 0) break;
          assert.ok(Date.now() < deadline, `the sessions of '${victim.name}' outlived it by 30 s`);
          await sleep(10);
        }
        const [row] = await query(
          "read what the victim held",
          () =>
            sql<{ pid: number | null; fresh: boolean | null; held: string[] }[]>`
            SELECT w.pid, (w.stopped_at IS NULL
                           AND apalis_now() - w.last_seen < ${orphanAfterMs}::bigint) AS fresh,
              ARRAY(SELECT t.id || ' ' || t.attempts FROM apalis_tasks AS t
                    WHERE t.queue = ${QUEUE} AND t.status = 'running'
                      AND t.lock_by = ${victim.name}) AS held
            FROM (SELECT 1) AS one LEFT JOIN apalis_workers AS w ON w.name = ${victim.name}`,
        );
        // Killed before it registered: it claimed nothing (what its name holds, if anything, is
        // an earlier instance's, counted at that one's kill).
        if (row!.pid === null || Number(row!.pid) !== victim.pid) return [];
        // Nobody can have rescued its tasks yet: its heartbeat is still young.
        assert.ok(row!.fresh, `'${victim.name}' looked dead already when its holdings were read`);
        return row!.held;
      },
      nameFree: async (name, signal) => {
        while (!signal.aborted) {
          const [row] = await query("read a worker's heartbeat", () =>
            sql<{ free: boolean }[]>`
              SELECT (stopped_at IS NOT NULL
                      OR apalis_now() - last_seen >= ${orphanAfterMs}::bigint) AS free
              FROM apalis_workers WHERE name = ${name}`);
          if (row?.free !== false) return;
          await sleep(50);
        }
      },
      // Each has registered and handles SIGTERM (one just started might not yet).
      stop: async (live) => {
        for (const worker of live) {
          const child = children.get(worker.pid)!;
          await child.ready;
          child.kill("SIGTERM");
        }
      },
      disruption: {
        due: async () => (await doneCount()) >= total * options.restartAtDone,
        run: async (live) => {
          // Every one has registered: the restart hits running workers, not starting ones.
          await Promise.all(live.map((worker) => children.get(worker.pid)!.ready));
          doneAtRestart = await doneCount();
          const before = Date.now();
          await db.cluster.restart();
          restartMs = Date.now() - before;
          doneAfterRestart = await doneCount();
        },
        stderrLine: OUTAGE_LINE,
      },
    }, {
      workers: options.workers,
      killEveryMs: options.killEveryMs,
      timeoutMs: options.timeoutMs,
      dir,
    });
    const { spawned, kills } = run;

    // Nothing lost: every task done, none waiting, held, failed or killed.
    assert.deepEqual(
      await storage.stats(QUEUE),
      { pending: 0, queued: 0, running: 0, done: total, failed: 0, killed: 0, total },
      "every task should end done",
    );
    const registered = await storage.listWorkers(QUEUE);
    // A victim's heartbeat looks alive for a while: the others stopped and said so.
    const killedPids = new Set(spawned.filter((worker) => worker.killed).map((w) => w.pid));
    assert.deepEqual(
      registered.filter((worker) => worker.stoppedAt === null && !killedPids.has(worker.pid)),
      [],
      "every worker that was not killed stopped",
    );

    // The chaos happened: the kills, and one restart of the server while tasks were left.
    assert.ok(kills >= options.minKills, `only ${kills} kills: the queue drained too fast`);
    assert.equal(run.disruptions, 1, "the server restarted once");
    assert.notEqual(await postmasterStart(), startedAt, "the server's start time changed");
    assert.ok(
      doneAtRestart < total && doneAfterRestart < total,
      `the restart came mid-drain (${doneAtRestart} then ${doneAfterRestart} of ${total} done)`,
    );
    const exits = await Promise.all(
      spawned.filter((worker) => worker.disrupted).map((worker) => worker.process.exit),
    );
    const reportedOutage = exits.filter((exit) => OUTAGE_LINE.test(exit.stderr)).length;
    assert.ok(reportedOutage > 0, "no worker alive at the restart noticed it");

    // Each process stood for its place's host; the registry shows the 4 hosts.
    const hostByName = new Map(registered.map((worker) => [worker.name, worker.host]));
    for (const worker of spawned) {
      assert.equal(hostByName.get(worker.name), hostOf(worker.slot), `host of '${worker.name}'`);
    }
    assert.equal(new Set(hostByName.values()).size, options.workers, "distinct hosts");

    // Handler starts, from the logs: each task's successful attempt started exactly once; an
    // earlier attempt only in a killed process, and only of a task it held when it died.
    const attempts = new Map<string, number>();
    for (
      const row of await sql<{ id: string; attempts: number }[]>`
        SELECT id, attempts FROM apalis_tasks WHERE queue = ${QUEUE}`
    ) {
      attempts.set(row.id, row.attempts);
    }
    const { finalStarts, superseded, reRuns, maxReRunsPerKill } = await countStarts(
      spawned,
      attempts,
    );
    assert.equal(finalStarts, total, "tasks whose successful attempt was logged as started");
    for (const [worker, keys] of superseded) {
      const held = new Set(worker.held);
      const unexplained = keys.filter((key) => !held.has(key));
      assert.deepEqual(
        unexplained,
        [],
        `killed '${worker.name}' (pid ${worker.pid}) re-ran attempts it did not hold`,
      );
    }
    const heldAtKills = spawned.reduce((sum, worker) => sum + worker.held.length, 0);
    const [extra] = await sql<{ n: number }[]>`
      SELECT coalesce(sum(attempts - 1), 0)::bigint AS n FROM apalis_tasks WHERE queue = ${QUEUE}`;
    const extraAttempts = extra!.n;
    // A task a victim held was rescued with its attempt counted, and took one more: each extra
    // attempt is one a killed worker held (a flush whose answer the restart cut gives back its
    // claims with their attempts).
    assert.equal(extraAttempts, heldAtKills, "extra attempts = tasks held by the killed workers");
    assert.ok(reRuns <= heldAtKills, `${reRuns} re-runs, ${heldAtKills} held at the kills`);
    assert.ok(extraAttempts > 0, "no kill interrupted a running handler: the drill proved nothing");

    return {
      total,
      durationMs: run.durationMs,
      kills,
      sameName: run.sameName,
      freshName: kills - run.sameName,
      doneAtRestart,
      doneAfterRestart,
      restartMs,
      aliveAtRestart: exits.length,
      reportedOutage,
      heldAtKills,
      reRuns,
      maxReRunsPerKill,
      extraAttempts,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** One line for a test step's name. */
export function describePgChaos(report: PgChaosReport): string {
  return `${report.total} tasks in ${(report.durationMs / 1000).toFixed(1)} s, ${report.kills} ` +
    `kills (${report.sameName} replaced under the same name, ${report.freshName} under a new ` +
    `one); restart at ${report.doneAtRestart} done (${report.restartMs} ms, ` +
    `${report.reportedOutage} of ${report.aliveAtRestart} workers reported it); ` +
    `${report.heldAtKills} held at the kills; ` +
    `${report.reRuns} re-runs (max ${report.maxReRunsPerKill} per kill), ` +
    `${report.extraAttempts} extra attempts`;
}
