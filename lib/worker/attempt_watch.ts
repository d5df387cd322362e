import type { Backend, LostAttemptRow, TaskKill } from "../backend/types.ts";
import { AttemptLostError, KilledError } from "./errors.ts";

/** How often a worker with handlers running checks that their attempts are still its own. */
export const ATTEMPT_CHECK_MS = 500;
/**
 * Attempts younger than this wait for the next check: a worker of quick tasks makes no query,
 * and a kill still reaches any handler within `ATTEMPT_CHECK_MS + ATTEMPT_MIN_AGE_MS` or so.
 */
const ATTEMPT_MIN_AGE_MS = 200;

/** An attempt the worker runs. */
export interface WatchedAttempt {
  readonly id: string;
  readonly attempt: number;
  /** When it started (`Date.now()`). */
  readonly startedAt: number;
}

/** What the watch needs from its worker. */
export interface AttemptWatchOptions {
  backend: Backend;
  worker: string;
  /** The attempts running now. */
  running: () => Iterable<WatchedAttempt>;
  /**
   * An attempt that is no longer the worker's, with the abort reason; `attempt` is undefined for
   * a kill in this process (whatever attempt of the task runs).
   */
  lost: (id: string, attempt: number | undefined, reason: KilledError | AttemptLostError) => void;
  /** A check that failed (it is tried again at the next tick). */
  onError: (error: unknown) => void;
}

/**
 * Tells a worker which of its running attempts were taken from it: killed by hand, rescued as an
 * orphan, retried, deleted. Kills made in this process arrive at once (no query); kills the
 * backend hears of from other processes (PostgreSQL: NOTIFY) are checked at once; everything
 * else is found by a check every {@linkcode ATTEMPT_CHECK_MS} ms, made only while handlers run.
 */
export class AttemptWatch {
  #o: AttemptWatchOptions;
  #unsubscribe: (() => void) | undefined;
  #unsubscribeNotices: (() => void) | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Checks under way. */
  #checking = 0;

  /** @param options the worker's side */
  constructor(options: AttemptWatchOptions) {
    this.#o = options;
  }

  /** Starts hearing this process's kills. */
  start(): void {
    this.#unsubscribe ??= this.#o.backend.onKilled((kill: TaskKill) =>
      this.#o.lost(kill.id, undefined, new KilledError(kill.id, kill.reason))
    );
  }

  /**
   * A handler started: checks every {@linkcode ATTEMPT_CHECK_MS} ms until a tick finds none
   * running (so a worker going idle stops within one tick, and quick tasks cost no timer each).
   */
  started(): void {
    this.#ticking(true);
  }

  /** Checks while handlers run, not while idle. */
  #ticking(running: boolean): void {
    if (running && this.#timer === undefined) {
      // Heard from the first task on, until the worker stops (an idle worker never LISTENs).
      this.#unsubscribeNotices ??= this.#o.backend.onExternalKill((id) =>
        void this.#check(id === "" ? "all" : id)
      );
      this.#timer = setInterval(() => void this.#check(), ATTEMPT_CHECK_MS);
    } else if (!running && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  /** Stops checking and hearing kills. */
  stop(): void {
    this.#ticking(false);
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#unsubscribeNotices?.();
    this.#unsubscribeNotices = undefined;
  }

  /**
   * Checks the attempts old enough (the periodic check), every attempt (`"all"`), or the one of
   * task `only` (a notice of its kill), if it runs here.
   */
  async #check(only?: string): Promise<void> {
    const { backend, worker } = this.#o;
    const oldest = only === undefined ? Date.now() - ATTEMPT_MIN_AGE_MS : Infinity;
    const attempts = [...this.#o.running()];
    if (attempts.length === 0 && only === undefined) return this.#ticking(false); // idle: stop
    const held = [];
    for (const { id, attempt, startedAt } of attempts) {
      if (startedAt <= oldest && (only === undefined || only === "all" || only === id)) {
        held.push({ id, attempt });
      }
    }
    if (held.length === 0 || backend.closed) return;
    // A slow database: one periodic check at a time (a notice's check goes at once).
    if (only === undefined && this.#checking > 0) return;
    this.#checking++;
    let rows: LostAttemptRow[];
    try {
      rows = await backend.workerLostAttempts(worker, held);
    } catch (error) {
      this.#o.onError(error);
      return;
    } finally {
      this.#checking--;
    }
    for (const row of rows) this.#o.lost(row.id, row.attempt, reasonOf(row, worker));
  }
}

/** Why an attempt is no longer its worker's, as the handler's abort reason. */
export function reasonOf(row: LostAttemptRow, worker: string): KilledError | AttemptLostError {
  const stored = storedError(row.last_error);
  if (row.status === "killed" && stored?.name === "KilledError") {
    return new KilledError(row.id, stored.message);
  }
  let why: string;
  if (row.status === null) why = "the task was deleted";
  else if (row.status === "running") {
    why = `attempt ${row.attempts} of the task runs on worker '${row.lock_by}'`;
  } else if (stored?.name === "WorkerLostError") {
    why =
      `the task was rescued as an orphan (the worker's heartbeat went stale) and is now '${row.status}'`;
  } else why = `the task is now '${row.status}'`;
  return new AttemptLostError(row.id, row.attempt, worker, why);
}

function storedError(text: string | null): { name: string; message: string } | undefined {
  if (text === null) return undefined;
  try {
    const parsed = JSON.parse(text) as { name?: unknown; message?: unknown };
    if (typeof parsed?.name !== "string") return undefined;
    return { name: parsed.name, message: typeof parsed.message === "string" ? parsed.message : "" };
  } catch {
    return undefined;
  }
}
