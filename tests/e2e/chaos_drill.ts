/**
 * The engine-neutral part of the chaos drills (SQLite: `_chaos.ts`; PostgreSQL:
 * `tests/backend/pg_chaos.ts`): worker processes drain one queue while this driver kills a
 * random one with SIGKILL every few seconds and starts a replacement, optionally disrupts the
 * database once mid-drain (PostgreSQL: a server restart), then reads every process's log of
 * handler starts (`<task id> <attempt>` first on each line) to count re-runs.
 *
 * Replacements alternate between the victim's own name and a fresh one, so that both recovery
 * paths run: a worker that registers under a dead instance's name takes its tasks back; the
 * survivors' heartbeats rescue the tasks of a dead worker nobody replaces under its name. A
 * replacement under the victim's name starts once the engine says a new process may take it
 * (at once on SQLite; after the heartbeat went stale on PostgreSQL); the kills go on meanwhile,
 * among the places that have a process.
 *
 * @module
 */
import assert from "node:assert/strict";
import { assertCleanExit, type Exit } from "./processes.ts";

export type { Exit };

/** A started worker process, as an engine hands it to the driver. */
export interface DrillProcess {
  readonly pid: number;
  /** Sends a signal; nothing if the process has exited. */
  kill(signal: Deno.Signal): void;
  /** Resolves when it has exited and its output is read. */
  readonly exit: Promise<Exit>;
}

/** A worker process of the drill. */
export interface DrillWorker {
  name: string;
  /** Which of the drill's `workers` places it fills (0-based): a replacement takes the victim's. */
  slot: number;
  /** The how-manieth process of the drill (0-based). */
  serial: number;
  pid: number;
  /** Its log of handler starts. */
  log: string;
  process: DrillProcess;
  /** It ended by the driver's SIGKILL. */
  killed: boolean;
  /**
   * For a killed worker: `"<task id> <attempt>"` of each task its name held `running` once it
   * was dead (see {@linkcode DrillEngine.heldAfterKill}).
   */
  held: string[];
  /** It was alive while the disruption ran: its stderr may report the database's outage. */
  disrupted: boolean;
}

/** What differs between engines. */
export interface DrillEngine {
  /** Starts a worker process under `name` that appends a line to `log` as each handler starts. */
  spawn(worker: { name: string; slot: number; serial: number; log: string }): DrillProcess;
  /** Whether the queue has nothing left to run. */
  drained(): Promise<boolean>;
  /** The queue's state, for an error message. */
  describe(): Promise<string>;
  /**
   * `"<task id> <attempt>"` of the tasks `victim`'s name holds `running`, read right after its
   * kill (an engine waits, if it can, until nothing the dead process sent can still commit).
   */
  heldAfterKill(victim: DrillWorker): Promise<string[]>;
  /**
   * Resolves once a new process may register under `name` (e.g. its heartbeat is stale), or
   * when `signal` aborts (the drill is over).
   */
  nameFree(name: string, signal: AbortSignal): Promise<void>;
  /**
   * Once drained: makes the live workers exit (workers started with `--drain` exit by
   * themselves).
   */
  stop(live: readonly DrillWorker[]): Promise<void>;
  /** A disruption of the database, run once mid-drain. */
  disruption?: {
    /** Whether it is time (checked between kills). */
    due(): Promise<boolean>;
    /**
     * Disrupts the database while `live` run (it may first wait until they are all up: a
     * process starting meanwhile is not what the drill tests). No process starts until it is
     * over.
     */
    run(live: readonly DrillWorker[]): Promise<void>;
    /** What a worker that lived through it may print on stderr, each line. */
    stderrLine: RegExp;
  };
}

/** The drill's timing. */
export interface DrillOptions {
  /** Worker processes alive at any time. */
  workers: number;
  /** A kill every `[min, max)` ms, uniformly at random. */
  killEveryMs: readonly [number, number];
  /** The drill fails if it has not drained after this long. */
  timeoutMs: number;
  /** Where the start logs go. */
  dir: string;
}

/** What the driver did. */
export interface DrillRun {
  /** Every process started, in order. */
  spawned: DrillWorker[];
  kills: number;
  /** Replacements that took the victim's name (the others took a fresh one). */
  sameName: number;
  /** How many times the disruption ran. */
  disruptions: number;
  durationMs: number;
}

/** Liveness bound for the workers' exit once drained (not a speed assertion). */
const STOP_TIMEOUT_MS = 60_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs the drill until the queue is drained and every worker has exited, asserting that each
 * exited cleanly (0, nothing on stderr but the disruption's lines) unless the driver killed it.
 */
export async function runDrill(engine: DrillEngine, options: DrillOptions): Promise<DrillRun> {
  const { workers, timeoutMs } = options;
  const spawned: DrillWorker[] = [];
  const spawn = (name: string, slot: number): DrillWorker => {
    const serial = spawned.length;
    const log = `${options.dir}/starts-${serial}.log`;
    const process = engine.spawn({ name, slot, serial, log });
    process.exit.catch(() => {}); // awaited later; a failure must not be unhandled meanwhile
    const worker: DrillWorker = {
      name,
      slot,
      serial,
      pid: process.pid,
      log,
      process,
      killed: false,
      held: [],
      disrupted: false,
    };
    spawned.push(worker);
    return worker;
  };
  const assertExit = (worker: DrillWorker, exit: Exit) => {
    const what = `worker '${worker.name}' (pid ${worker.pid})`;
    if (!worker.disrupted || engine.disruption === undefined) return assertCleanExit(exit, what);
    assert.equal(exit.code, 0, `${what} exited with ${exit.code} (${exit.signal}): ${exit.stderr}`);
    const { stderrLine } = engine.disruption;
    const unexpected = exit.stderr.split("\n").filter((line) => line && !stderrLine.test(line));
    assert.deepEqual(unexpected, [], `${what} printed more than the outage to stderr`);
  };

  const started = Date.now();
  // A place without a process waits for its replacement to get the victim's name.
  const live: (DrillWorker | undefined)[] = Array.from(
    { length: workers },
    (_, slot) => spawn(`w${slot + 1}`, slot),
  );
  const over = new AbortController();
  const replacing: Promise<void>[] = [];
  let disrupting: Promise<void> = Promise.resolve();
  let kills = 0;
  let sameName = 0;
  let disruptions = 0;
  try {
    const [min, max] = options.killEveryMs;
    while (true) {
      await sleep(min + Math.random() * (max - min));
      if (await engine.drained()) break;
      if (Date.now() - started > timeoutMs) {
        throw new Error(
          `The queue did not drain within ${timeoutMs} ms: ${await engine.describe()}`,
        );
      }
      if (engine.disruption && disruptions === 0 && await engine.disruption.due()) {
        const during = live.filter((worker) => worker !== undefined);
        for (const worker of during) worker.disrupted = true;
        disrupting = engine.disruption.run(during);
        await disrupting;
        disruptions++;
        continue;
      }
      const occupied = live.flatMap((worker, slot) => worker ? [slot] : []);
      if (occupied.length === 0) continue;
      const slot = occupied[Math.floor(Math.random() * occupied.length)]!;
      const victim = live[slot]!;
      victim.process.kill("SIGKILL"); // nothing if it exited on its own
      const exit = await victim.process.exit;
      if (exit.signal !== "SIGKILL") {
        assertExit(victim, exit);
        assert.ok(
          await engine.drained(),
          `worker '${victim.name}' exited before the queue drained`,
        );
        break;
      }
      victim.killed = true;
      kills++;
      victim.held = await engine.heldAfterKill(victim);
      if (kills % 2 === 1) {
        sameName++;
        live[slot] = undefined;
        replacing.push((async () => {
          await engine.nameFree(victim.name, over.signal);
          await disrupting.catch(() => {}); // its failure fails the drill
          if (!over.signal.aborted) live[slot] = spawn(victim.name, slot);
        })());
      } else {
        live[slot] = spawn(`w${slot + 1}.${kills}`, slot);
      }
    }
    over.abort();
    await Promise.all(replacing);
    const last = live.filter((worker) => worker !== undefined);
    await engine.stop(last);
    const exits = await withTimeout(
      Promise.all(last.map((worker) => worker.process.exit)),
      STOP_TIMEOUT_MS,
      "the workers to exit once the queue drained",
    );
    exits.forEach((exit, i) => assertExit(last[i]!, exit));
  } finally {
    over.abort();
    await Promise.allSettled(replacing);
    for (const worker of spawned) worker.process.kill("SIGKILL");
    await Promise.allSettled(spawned.map((worker) => worker.process.exit));
  }
  return { spawned, kills, sameName, disruptions, durationMs: Date.now() - started };
}

/** Handler starts, from the logs. */
export interface StartCounts {
  /** Starts of each task's last attempt (its successful one): one per task. */
  finalStarts: number;
  /** Starts of attempts that a later attempt superseded, by the process that started them. */
  superseded: Map<DrillWorker, string[]>;
  /** All of them. */
  reRuns: number;
  /** The most one killed process caused. */
  maxReRunsPerKill: number;
}

/**
 * Reads every worker's log of starts against each task's last attempt (`attempts`, by task
 * id), asserting that each line names a known task and an attempt it had, that no attempt
 * started twice, and that only killed processes started attempts that were superseded.
 */
export async function countStarts(
  spawned: readonly DrillWorker[],
  attempts: ReadonlyMap<string, number>,
): Promise<StartCounts> {
  const seen = new Set<string>();
  const superseded = new Map<DrillWorker, string[]>();
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
    const mine: string[] = [];
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
      const key = `${id} ${attempt}`;
      assert.ok(!seen.has(key), `attempt ${attempt} of task ${id} started twice`);
      seen.add(key);
      if (attempt === last) finalStarts++;
      else mine.push(key);
    }
    if (!worker.killed) {
      assert.deepEqual(mine, [], `'${worker.name}' was never killed, yet its attempts re-ran`);
    }
    superseded.set(worker, mine);
    reRuns += mine.length;
    maxReRunsPerKill = Math.max(maxReRunsPerKill, mine.length);
  }
  return { finalStarts, superseded, reRuns, maxReRunsPerKill };
}
