/**
 * A worker's share of its queue's retention, off its claim-and-ack loop: after the worker starts
 * and then every `retention.everyMs`, a pass over the queue's finished tasks deletes the expired
 * ones, step by step (`Backend.retentionStep`), pausing after each step that deleted. Every
 * worker of the queue runs one; the queue's lease in the database lets one of them delete at a
 * time, and a pass that finds another holder ends at once. A queue whose tasks are kept forever
 * runs none. Nothing of it is on the path of pushes, claims and acks.
 *
 * @module
 */
import type { RetentionCursor, RetentionStep } from "../backend/types.ts";
import type { Storage } from "../storage/storage.ts";
import { type LongTimer, setLongTimeout } from "../time/timers.ts";
import type { WorkerEvent } from "./events.ts";

/**
 * How long the lease stays a holder's after its last deleting step: a crashed holder's is free
 * after that.
 */
export const RETENTION_LEASE_MS = 120_000;
/** The pause after a step that deleted: other writers get the database most of the time. */
export const RETENTION_PAUSE_MS = 50;

/** Runs the passes until {@linkcode RetentionSweeper.stop}. */
export class RetentionSweeper {
  readonly #storage: Storage<unknown>;
  readonly #holder: string;
  readonly #emit: (event: Extract<WorkerEvent, { type: "retention" }>) => void;
  readonly #onError: (error: unknown) => void;
  #stopped = false;
  #timer: LongTimer | undefined;
  #wake: (() => void) | undefined;
  #running: Promise<void> | undefined;

  /**
   * @param storage the worker's queue, whose `config.retention` applies
   * @param holder who holds the lease while this worker deletes (its name and instance)
   * @param emit told of each step that deleted
   * @param onError told of a pass that failed (the next one comes at the usual time)
   */
  constructor(
    storage: Storage<unknown>,
    holder: string,
    emit: (event: Extract<WorkerEvent, { type: "retention" }>) => void,
    onError: (error: unknown) => void,
  ) {
    this.#storage = storage;
    this.#holder = holder;
    this.#emit = emit;
    this.#onError = onError;
  }

  /** Starts the passes, unless the queue keeps its finished tasks forever. */
  start(): void {
    const { doneMs, killedMs } = this.#storage.config.retention;
    if (doneMs === null && killedMs === null) return;
    this.#running ??= this.#loop();
  }

  /** Stops; resolves when a pass under way has stopped and let the lease go. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.clear();
    this.#wake?.();
    await this.#running;
  }

  async #loop(): Promise<void> {
    const storage = this.#storage;
    let toldNoTable = false;
    while (!this.#stopped) {
      try {
        await this.#pass();
      } catch (error) {
        if (storage.backend.closed) return;
        // An older schema (the library upgraded, setup() not run yet): say so once, not each time.
        const noTable = isMissingLeasesTable(error);
        if (!noTable || !toldNoTable) this.#onError(error);
        toldNoTable ||= noTable;
      }
      await this.#sleep(storage.config.retention.everyMs);
    }
  }

  #pass(): Promise<unknown> {
    return retentionPass(this.#storage, this.#holder, {
      onDeleted: this.#emit,
      stopped: () => this.#stopped,
      pause: (ms) => this.#sleep(ms),
    });
  }

  async #sleep(ms: number): Promise<void> {
    if (this.#stopped) return;
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
      this.#timer = setLongTimeout(resolve, ms); // `every` may be weeks
    });
    this.#wake = undefined;
  }
}

/** What a retention pass did. */
export interface RetentionPassOutcome {
  /** Tasks deleted (those of the runs included). */
  tasks: number;
  /** Workflow runs deleted. */
  runs: number;
  /** Steps that deleted (each one transaction). */
  batches: number;
  /** Whether it ended because another holder held the lease. */
  leased: boolean;
}

/**
 * One pass of a queue's retention as `holder`: steps through the queue's finished tasks, then
 * its finished runs, until the end, a stop, or another holder; then lets the lease go (another
 * worker may take it `retention.everyMs` later after a whole pass, at once after a stop).
 */
export async function retentionPass(
  storage: Storage<unknown>,
  holder: string,
  hooks: {
    onDeleted?: (event: Extract<WorkerEvent, { type: "retention" }>) => void;
    stopped?: () => boolean;
    pause?: (ms: number) => Promise<void>;
  } = {},
): Promise<RetentionPassOutcome> {
  const { backend, queue, config } = storage;
  const { doneMs, killedMs, everyMs, batchSize } = config.retention;
  const { stopped = () => false, pause = (ms) => new Promise((r) => setTimeout(r, ms)) } = hooks;
  const outcome: RetentionPassOutcome = { tasks: 0, runs: 0, batches: 0, leased: false };
  let after: RetentionCursor | undefined;
  let holding = false;
  let finished = false;
  try {
    while (!stopped()) {
      const step: RetentionStep = {
        queue,
        holder,
        leaseMs: RETENTION_LEASE_MS,
        doneMs,
        killedMs,
        batchSize,
      };
      if (after !== undefined) step.after = after;
      const now = storage.databaseNow();
      if (now !== undefined) step.now = now;
      const result = await backend.retentionStep(step);
      if (result.outcome === "leased") {
        // Another holder has it (this one's expired while it paused, or it never had it).
        holding = false;
        outcome.leased = true;
        return outcome;
      }
      if (result.outcome === "deleted") {
        holding = true;
        outcome.tasks += result.tasks;
        outcome.runs += result.runs;
        outcome.batches++;
        hooks.onDeleted?.({
          type: "retention",
          queue,
          tasks: result.tasks,
          runs: result.runs,
          heldFrom: result.held!.from,
          heldTo: result.held!.to,
        });
      }
      if (result.next === null) {
        finished = true;
        return outcome;
      }
      after = result.next;
      // A macrotask at least: this process's timers and I/O run between steps.
      await pause(result.outcome === "deleted" ? RETENTION_PAUSE_MS : 0);
    }
    return outcome;
  } finally {
    // A whole pass (even one that found nothing) keeps the others away until the next one is
    // due: about one pass per `every` across the queue's workers. A stopped one lets another
    // worker go on at once.
    if ((finished || holding) && !backend.closed) {
      const release: Parameters<typeof backend.retentionRelease>[0] = {
        queue,
        holder,
        nextInMs: finished ? everyMs : 0,
      };
      const now = storage.databaseNow();
      if (now !== undefined) release.now = now;
      await backend.retentionRelease(release);
    }
  }
}

/**
 * Whether `error`, or one of its causes, says that the leases' table does not exist: a database
 * whose schema predates retention, not set up since.
 */
export function isMissingLeasesTable(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (/apalis_leases/.test(e.message) && /no such table|does not exist/.test(e.message)) {
      return true;
    }
  }
  return false;
}
