/**
 * The chaos drill shared by `chaos_test.ts` (CI size) and `tests/soak/chaos_soak.ts`: worker
 * processes (`worker_process.ts`) drain one queue while a driver kills a random one with SIGKILL
 * every few seconds and starts a replacement, then every task is accounted for.
 *
 * Replacements alternate between the victim's own name (its register rescues what the dead
 * instance held, at once) and a fresh name (the survivors' heartbeats find the dead pid and
 * rescue its tasks), so both recovery paths run in every drill.
 *
 * @module
 */
import assert from "node:assert/strict";
import { SqliteStorage, Task } from "../../mod.ts";
import type { TempDatabase } from "../_helpers.ts";
import { assertCleanExit, type Exit, exitOf, reap, spawnWorker } from "./_processes.ts";
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

interface Spawned {
  name: string;
  pid: number;
  log: string;
  child: Deno.ChildProcess;
  exit: Promise<Exit>;
  killed: boolean;
}

const QUEUE = "chaos";
const PUSH_CHUNK = 10_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

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
  const spawned: Spawned[] = [];
  const spawn = (name: string): Spawned => {
    const log = `${dir}/starts-${spawned.length}.log`;
    const child = spawnWorker(path, name, [...args, "--start-log", log]);
    const exit = exitOf(child, `worker '${name}' (pid ${child.pid})`, options.timeoutMs);
    exit.catch(() => {}); // awaited later; a timeout must not be an unhandled rejection meanwhile
    const worker = { name, pid: child.pid, log, child, exit, killed: false };
    spawned.push(worker);
    return worker;
  };
  const drained = async () => (await scalar(db, UNFINISHED_SQL, [QUEUE, QUEUE])) === 0;
  const heldBy = (name: string, status: string) =>
    scalar(
      db,
      "SELECT count(*) AS n FROM apalis_tasks WHERE lock_by = ? AND status = ? AND queue = ?",
      [name, status, QUEUE],
    );

  const started = Date.now();
  const live = Array.from({ length: workers }, (_, i) => spawn(`w${i + 1}`));
  let kills = 0;
  let sameName = 0;
  let runningAtKills = 0;
  try {
    const [min, max] = options.killEveryMs;
    while (true) {
      await sleep(min + Math.random() * (max - min));
      if (await drained()) break;
      if (Date.now() - started > options.timeoutMs) {
        throw new Error(
          `The queue did not drain within ${options.timeoutMs} ms: ${
            JSON.stringify(await storage.stats(QUEUE))
          }`,
        );
      }
      const slot = Math.floor(Math.random() * workers);
      const victim = live[slot]!;
      try {
        victim.child.kill("SIGKILL");
      } catch {
        // It exited on its own: only a drained queue lets a worker exit cleanly.
      }
      const exit = await victim.exit;
      if (exit.signal !== "SIGKILL") {
        assertCleanExit(exit, `worker '${victim.name}'`);
        assert.ok(await drained(), `worker '${victim.name}' exited before the queue drained`);
        break;
      }
      victim.killed = true;
      kills++;
      runningAtKills += await heldBy(victim.name, "running");
      const same = kills % 2 === 1;
      if (same) sameName++;
      live[slot] = spawn(same ? victim.name : `w${slot + 1}.${kills}`);
    }
    const exits = await Promise.all(live.map((worker) => worker.exit));
    exits.forEach((exit, i) => assertCleanExit(exit, `worker '${live[i]!.name}'`));
  } finally {
    await reap(spawned.map((worker) => worker.child));
  }
  const durationMs = Date.now() - started;

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
  const seen = new Set<string>();
  let finalStarts = 0;
  let reRuns = 0;
  let maxReRunsPerKill = 0;
  for (const worker of spawned) {
    let text = "";
    try {
      text = await Deno.readTextFile(worker.log);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error; // killed before its first task
    }
    let superseded = 0;
    for (const line of text.split("\n")) {
      if (line === "") continue;
      const [id, attemptText] = line.split(" ");
      const attempt = Number(attemptText);
      const last = attempts.get(id!);
      assert.ok(last !== undefined, `'${worker.name}' logged unknown task '${line}'`);
      assert.ok(
        attempt >= 1 && attempt <= last,
        `'${worker.name}' logged '${line}' (last ${last})`,
      );
      assert.ok(!seen.has(line), `attempt ${attempt} of task ${id} started twice`);
      seen.add(line);
      if (attempt === last) finalStarts++;
      else superseded++;
    }
    if (worker.killed) {
      assert.ok(
        superseded <= perKill,
        `killed '${worker.name}' (pid ${worker.pid}) caused ${superseded} re-runs: more than its concurrency + bufferSize ${perKill}`,
      );
    } else {
      assert.equal(superseded, 0, `'${worker.name}' was never killed, yet its attempts re-ran`);
    }
    reRuns += superseded;
    maxReRunsPerKill = Math.max(maxReRunsPerKill, superseded);
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
    sameName,
    freshName: kills - sameName,
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
