/**
 * A worker's look at its queue's cron schedules, off its claim-and-ack loop: it enqueues the due
 * ticks (see `enqueueDue`), then sleeps until the earliest next tick, and at most a second, so
 * that schedules added by other processes are noticed. Every worker of a queue runs one; the
 * database lets one of them enqueue each tick. A queue without schedules costs one indexed read
 * a second per worker, and nothing on the path of pushes, claims and acks.
 *
 * @module
 */
import type { Storage } from "../storage/storage.ts";
import { enqueueDue, isMissingSchedulesTable } from "../storage/schedules.ts";

/** The longest a worker goes without looking at its queue's schedules. */
export const SCHEDULE_LOOK_MS = 1000;
/** How often it looks in a database whose schema predates schedules (not set up since). */
const NO_TABLE_LOOK_MS = 60_000;

/** Runs the looks until {@linkcode ScheduleTicker.stop}. */
export class ScheduleTicker {
  readonly #storage: Storage<unknown>;
  readonly #onError: (error: unknown) => void;
  #stopped = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #wake: (() => void) | undefined;
  #running: Promise<void> | undefined;
  #toldNoTable = false;

  /**
   * @param storage the worker's queue
   * @param onError told of a look that failed (the next look comes a second later)
   */
  constructor(storage: Storage<unknown>, onError: (error: unknown) => void) {
    this.#storage = storage;
    this.#onError = onError;
  }

  /** Starts looking. */
  start(): void {
    this.#running ??= this.#loop();
  }

  /** Stops looking; resolves when a look under way has finished. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#wake?.();
    await this.#running;
  }

  async #loop(): Promise<void> {
    const storage = this.#storage;
    while (!this.#stopped) {
      let delay = SCHEDULE_LOOK_MS;
      try {
        const outcome = await enqueueDue(storage.backend, storage.queue, storage.databaseNow());
        if (outcome.more) delay = 0;
        else if (outcome.nextAt !== null) {
          // A millisecond past the tick: a timer that fires on the dot may find it not yet due.
          delay = Math.max(0, Math.min(SCHEDULE_LOOK_MS, outcome.nextAt - outcome.now + 1));
        }
      } catch (error) {
        if (storage.backend.closed) return;
        // An older schema (the library upgraded, setup() not run yet): say so once, not each second.
        const noTable = isMissingSchedulesTable(error);
        if (noTable) delay = NO_TABLE_LOOK_MS;
        if (!noTable || !this.#toldNoTable) this.#onError(error);
        this.#toldNoTable ||= noTable;
      }
      if (this.#stopped) return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        this.#timer = setTimeout(resolve, delay);
      });
      this.#wake = undefined;
    }
  }
}
