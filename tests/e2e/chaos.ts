/**
 * The SQLite chaos drill shared by `chaos_test.ts` (CI size) and `tests/soak/chaos_soak.ts`:
 * worker processes (`worker_process.ts --drain`) drain one queue while the driver of
 * `chaos_drill.ts` kills a random one with SIGKILL every few seconds and starts a replacement,
 * then every task is accounted for.
 *
 * Replacements alternate between the victim's own name (its register rescues what the dead
 * instance held, at once) and a fresh name (the survivors' heartbeats find the dead pid and
 * rescue its tasks), so both recovery paths run in every drill.
 *
 * @module
 */
import assert from "node:assert/strict";
import { retryBusy } from "../../lib/sqlite/busy.ts";
import { SqliteStorage, Task } from "../../mod.ts";
import type { TempDatabase } from "../_helpers.ts";
import { countStarts, runDrill } from "./chaos_drill.ts";
import { exitOf, spawnWorker } from "./processes.ts";
import { assertRunsCoverTasks, RUNS_DDL, scalar, UNFINISHED_SQL } from "./_runs.ts";

/** What to run. */
export interface ChaosOptions {
  /** Tasks to push, then drain. */
  total: number;
  /** Worker processes alive at any time. */
  workers: number;
  /** `--concurrency` of each worker. */
  concurrency: number;
  /** `--buffer-size` of each worker: the most tasks it claims ahead of its free slots. */
  bufferSize: number;
  /** What each handler sleeps: keeps handlers in flight when a kill lands. */
  sleepMs: number;
  /** A kill every `[min, max)` ms, uniformly at random. */
  killEveryMs: [number, number];
  /** Heartbeat period: how soon survivors notice a dead pid. */
  keepAliveMs: number;
  /** Backstop for a dead worker whose pid the OS reused (it would look alive). */
  orphanAfterMs: number;
  /** The drill fails if it has not drained after this long. */
  timeoutMs: number;
  /** The drill fails with fewer kills than this (the chaos did not happen). */
  minKills: number;
}

/** What happened. */
export interface ChaosReport {
  total: number;
  durationMs: number;
  kills: number;
  /** Replacements that took the victim's name / a fresh one. */
  sameName: number;
  freshName: number;
  /**
   * Held (`running`: in flight, finished but not acked, or claimed ahead) under the victim's
   * name right after each kill (peers may rescue first).
   */
  runningAtKills: number;
  /** Handler starts beyond each task's successful one (from the start logs). */
  reRuns: number;
  /** The most re-runs one killed process caused. */
  maxReRunsPerKill: number;
  /** Σ (attempts − 1) over all tasks: also counts starts killed before the handler's first line. */
  extraAttempts: number;
  /** `runs` rows beyond one per task: handlers that ran to their end twice. */
  duplicateRuns: number;
  /**
   * kills × (concurrency + bufferSize): a worker holds at most `concurrency` handlers plus what
   * it claimed ahead, and only those can have started without their outcome committed.
   */
  bound: number;
}

const QUEUE = "chaos";
const PUSH_CHUNK = 10_000;

/**
 * The drill's shape, shared by the CI test and the soak (which differ in size): 4 processes of 8
 * handlers that take >= 20 ms each (at most 1,600 tasks/s, so a drain spans many kills) and
 * claim up to 8 ahead, a kill every 1-3 s, heartbeats every 500 ms.
 */
export const CHAOS_DRILL = {
  workers: 4,
  concurrency: 8,
  bufferSize: 8,
  sleepMs: 20,
  killEveryMs: [1_000, 3_000],
  keepAliveMs: 500,
  orphanAfterMs: 30_000,
} as const satisfies Partial<ChaosOptions>;

/**
 * Pushes `total` tasks, runs the drill, asserts that no task was lost or run more often than the
 * kills explain, and returns the numbers.
 */
export async function runChaos(tmp: TempDatabase, options: ChaosOptions): Promise<ChaosReport> {
  const { db, dir, path } = tmp;
  const { total, workers, concurrency, bufferSize } = options;
  const perKill = concurrency + bufferSize;
  db.exec(RUNS_DDL);
  const storage = new SqliteStorage<{ n: number }>(db, QUEUE);
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
    String(concurrency),
    "--sleep-ms",
    String(options.sleepMs),
    "--keep-alive-ms",
    String(options.keepAliveMs),
    "--orphan-after-ms",
    String(options.orphanAfterMs),
    "--buffer-size",
    String(bufferSize),
    "--drain",
  ];
  const drained = async () => (await scalar(db, UNFINISHED_SQL, [QUEUE, QUEUE])) === 0;
  const run = await runDrill({
    spawn: ({ name, log }) => {
      const child = spawnWorker(path, name, [...args, "--start-log", log]);
      return {
        pid: child.pid,
        kill: (signal) => {
          try {
            child.kill(signal);
          } catch {
            // It has exited.
          }
        },
        exit: exitOf(child, `worker '${name}' (pid ${child.pid})`, options.timeoutMs),
      };
    },
    drained,
    describe: async () => JSON.stringify(await storage.stats(QUEUE)),
    // Right after the kill; the survivors may have rescued some already (they see the pid gone).
    heldAfterKill: async (victim) =>
      (await retryBusy(db, () =>
        db.all<{ id: string; attempts: number }>(
          "SELECT id, attempts FROM apalis_tasks WHERE lock_by = ? AND status = 'running' AND queue = ?",
          [victim.name, QUEUE],
        ))).map((row) => `${row.id} ${row.attempts}`),
    nameFree: () => Promise.resolve(), // a dead pid frees its name at once
    stop: () => Promise.resolve(), // --drain: they exit by themselves
  }, { workers, killEveryMs: options.killEveryMs, timeoutMs: options.timeoutMs, dir });
  const { spawned, kills } = run;
  const runningAtKills = spawned.reduce((sum, worker) => sum + worker.held.length, 0);
  const durationMs = run.durationMs;

  // Nothing lost: every task done, none waiting, held, failed or killed.
  assert.deepEqual(
    await storage.stats(QUEUE),
    { pending: 0, queued: 0, running: 0, done: total, failed: 0, killed: 0, total },
    "every task should end done",
  );
  assert.ok(
    (await storage.listWorkers(QUEUE)).every((worker) => !worker.alive),
    "no worker should be left alive",
  );
  assert.ok(kills >= options.minKills, `only ${kills} kills: the queue drained too fast`);

  // Handler starts, from the logs: each task's successful attempt was started exactly once, and
  // an earlier attempt was started only by a process that was then killed.
  const attempts = new Map<string, number>();
  for (
    const row of db.all<{ id: string; attempts: number }>(
      "SELECT id, attempts FROM apalis_tasks WHERE queue = ?",
      [QUEUE],
    )
  ) {
    attempts.set(row.id, row.attempts);
  }
  const { finalStarts, superseded, reRuns, maxReRunsPerKill } = await countStarts(
    spawned,
    attempts,
  );
  for (const [worker, keys] of superseded) {
    assert.ok(
      keys.length <= perKill,
      `killed '${worker.name}' (pid ${worker.pid}) caused ${keys.length} re-runs: more than its concurrency + bufferSize ${perKill}`,
    );
  }
  assert.equal(finalStarts, total, "tasks whose successful attempt was logged as started");

  const bound = kills * perKill;
  const extraAttempts = await scalar(
    db,
    "SELECT coalesce(sum(attempts - 1), 0) AS n FROM apalis_tasks WHERE queue = ?",
    [QUEUE],
  );
  assert.ok(reRuns <= bound, `${reRuns} re-runs after ${kills} kills: over ${bound}`);
  assert.ok(extraAttempts <= bound, `${extraAttempts} extra attempts after ${kills} kills`);
  assert.ok(reRuns <= extraAttempts, `${reRuns} logged re-runs, ${extraAttempts} extra attempts`);
  assert.ok(extraAttempts > 0, "no kill interrupted a running handler: the drill proved nothing");

  // Handlers that ran to their end (the `runs` rows): the successful attempt exactly once per
  // task; an earlier attempt only in a process that was killed.
  await assertRunsCoverTasks(db, total);
  assert.equal(
    await scalar(
      db,
      `SELECT count(*) AS n FROM runs r JOIN apalis_tasks t ON t.id = r.task_id
       WHERE r.attempt = t.attempts`,
    ),
    total,
    "runs of each task's successful attempt",
  );
  const killedPids = spawned.filter((worker) => worker.killed).map((worker) => worker.pid);
  assert.equal(
    await scalar(
      db,
      `SELECT count(*) AS n FROM runs r JOIN apalis_tasks t ON t.id = r.task_id
       WHERE r.attempt > t.attempts
          OR (r.attempt < t.attempts AND r.pid NOT IN (SELECT value FROM json_each(?)))`,
      [JSON.stringify(killedPids)],
    ),
    0,
    "runs of superseded attempts in processes that were not killed",
  );
  const duplicateRuns = (await scalar(db, "SELECT count(*) AS n FROM runs")) - total;

  return {
    total,
    durationMs,
    kills,
    sameName: run.sameName,
    freshName: kills - run.sameName,
    runningAtKills,
    reRuns,
    maxReRunsPerKill,
    extraAttempts,
    duplicateRuns,
    bound,
  };
}

/** One line for a test step's name. */
export function describeChaos(report: ChaosReport): string {
  return `${report.total} tasks in ${
    (report.durationMs / 1000).toFixed(1)
  } s, ${report.kills} kills ` +
    `(${report.sameName} restarted under the same name, ${report.freshName} under a new one); ` +
    `at the kills ${report.runningAtKills} held; ` +
    `${report.reRuns} re-runs (max ${report.maxReRunsPerKill} per kill), ` +
    `${report.extraAttempts} extra attempts, ${report.duplicateRuns} duplicate completions; ` +
    `bound ${report.bound} (kills × (concurrency + bufferSize))`;
}
