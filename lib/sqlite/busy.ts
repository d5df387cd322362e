import { toFileError } from "./file_error.ts";
import type { Database } from "./types.ts";

/** Thrown when a write kept finding the database locked for longer than `busyRetryMs`. */
export class DatabaseBusyError extends Error {
  /**
   * @param path the database file
   * @param waitedMs how long the write kept retrying
   * @param options the busy error that was last seen
   */
  constructor(path: string, waitedMs: number, options?: ErrorOptions) {
    super(
      `Cannot write to database '${path}': it stayed locked by another connection for ${waitedMs} ms`,
      options,
    );
    this.name = "DatabaseBusyError";
  }
}

const BUSY_CODES = new Set([5, 6, 261, 517]); // SQLITE_BUSY, _LOCKED, _BUSY_RECOVERY, _BUSY_SNAPSHOT

/** Whether an error thrown by either driver means "locked by someone else, try again". */
export function isBusyError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const coded = error as Error & { errcode?: unknown; errno?: unknown; code?: unknown };
  if (typeof coded.errcode === "number" && BUSY_CODES.has(coded.errcode & 0xff)) return true;
  if (typeof coded.errno === "number" && BUSY_CODES.has(coded.errno & 0xff)) return true;
  if (coded.code === "SQLITE_BUSY" || coded.code === "SQLITE_LOCKED") return true;
  return /database is locked|database table is locked|database is busy/i.test(error.message);
}

/**
 * Runs a synchronous write, retrying busy errors on timers (never blocking the event loop) with
 * a backoff from 1 ms to 50 ms, until `db.busyRetryMs` has passed. Other errors are thrown at
 * once; a problem with the file itself (full, read-only, corrupt) as a `DatabaseFileError` that
 * names `action` when given.
 *
 * @example Usage
 * ```ts ignore
 * const changes = await retryBusy(db, () => db.run("DELETE FROM t").changes, "clear table t");
 * ```
 */
export async function retryBusy<T>(db: Database, write: () => T, action?: string): Promise<T> {
  try {
    return write();
  } catch (error) {
    if (!isBusyError(error)) throw toFileError(db.path, error, action);
  }
  // Most locks are held for a millisecond or two by another worker's flush. Wait for the first
  // one inside SQLite, once: its busy handler retries every few ms without timers or any work on
  // this event loop, so the lock changes hands promptly and the waiting process takes no CPU
  // from the holder. A lock held longer than that is waited for on timers, so that the event
  // loop keeps running (4 worker processes on one file drained 12-14k tasks/s with timers alone,
  // 17-23k with this).
  try {
    return withBusyTimeout(db, Math.max(db.busyTimeoutMs, BLOCKING_WAIT_MS), write);
  } catch (error) {
    if (!isBusyError(error)) throw toFileError(db.path, error, action);
  }
  const started = Date.now();
  let delay = 1;
  while (true) {
    await new Promise((resolve) => setTimeout(resolve, delay * (0.5 + Math.random())));
    try {
      return write();
    } catch (error) {
      if (!isBusyError(error)) throw toFileError(db.path, error, action);
      const waited = Date.now() - started;
      if (waited >= db.busyRetryMs) {
        throw new DatabaseBusyError(db.path, waited, { cause: error });
      }
      delay = Math.min(50, delay * 2);
    }
  }
}

/** How long the one synchronous wait for a lock may freeze the event loop. */
const BLOCKING_WAIT_MS = 50;

function withBusyTimeout<T>(db: Database, ms: number, write: () => T): T {
  if (ms === db.busyTimeoutMs) return write();
  db.exec(`PRAGMA busy_timeout = ${ms}`);
  try {
    return write();
  } finally {
    db.exec(`PRAGMA busy_timeout = ${db.busyTimeoutMs}`);
  }
}

/**
 * Runs a synchronous step of opening or setting up a database (both synchronous APIs), waiting
 * out a database that another connection has locked for up to `waitMs`: inside SQLite's own busy
 * handler (the connection's `busy_timeout` is set to the time left before each try, through
 * `setBusyTimeout`), and by trying again after a short sleep where SQLite reports busy without
 * waiting (a deadlock it breaks, WAL recovery by another process). Many processes opening one new
 * file at once meet both. The caller restores its own `busy_timeout` afterwards.
 *
 * Returns what `step` returns; a busy error that outlasts `waitMs` is thrown as
 * {@linkcode BusyWaitExpired}, any other error as it is.
 */
export function waitOutBusySync<T>(
  setBusyTimeout: (ms: number) => void,
  waitMs: number,
  step: () => T,
): T {
  const started = Date.now();
  let pause = 1;
  while (true) {
    const left = Math.max(0, waitMs - (Date.now() - started));
    // SQLite keeps busy_timeout in a C int.
    setBusyTimeout(Math.min(Math.floor(left), 2 ** 31 - 1));
    try {
      return step();
    } catch (error) {
      if (!isBusyError(error)) throw error;
      const waited = Date.now() - started;
      if (waited >= waitMs) throw new BusyWaitExpired(waited, error);
      sleepSync(Math.min(pause * (0.5 + Math.random()), waitMs - waited));
      pause = Math.min(50, pause * 2);
    }
  }
}

/** A busy error that outlasted {@linkcode waitOutBusySync}'s wait; the driver's error is the cause. */
export class BusyWaitExpired extends Error {
  /**
   * @param waitedMs how long the step kept waiting
   * @param cause the busy error seen last
   */
  constructor(readonly waitedMs: number, cause: unknown) {
    super(`it stayed locked by another connection for ${waitedMs} ms`, { cause });
    this.name = "BusyWaitExpired";
  }
}

const SLEEPER = new Int32Array(new SharedArrayBuffer(4));

/** Blocks the thread for `ms` (only where the API is synchronous anyway: open and setup). */
function sleepSync(ms: number): void {
  Atomics.wait(SLEEPER, 0, 0, ms);
}
