import { accessSync, constants, existsSync, statSync } from "node:fs";
import { dirname } from "node:path";
import process from "node:process";
import { Connection, type NativeConnection } from "./_connection.ts";
import { loadBunSqlite } from "./bun_sqlite.ts";
import { BusyWaitExpired, waitOutBusySync } from "./busy.ts";
import { loadNodeSqlite } from "./node_sqlite.ts";
import type { Database, OpenDatabaseOptions, SqlRow } from "./types.ts";

type Opener = (path: string, readOnly: boolean) => NativeConnection;

// The only runtime detection in the library: node:sqlite wherever it exists, bun:sqlite otherwise
// (or on Bun when APALIS_SQLITE_DRIVER=bun:sqlite, which lets CI exercise both adapters).
const { open: openNative, driver } = await (async (): Promise<
  { open: Opener; driver: "node:sqlite" | "bun:sqlite" }
> => {
  if ("Bun" in globalThis && process.env.APALIS_SQLITE_DRIVER === "bun:sqlite") {
    return { open: await loadBunSqlite(), driver: "bun:sqlite" };
  }
  try {
    return { open: await loadNodeSqlite(), driver: "node:sqlite" };
  } catch (error) {
    if (!("Bun" in globalThis)) {
      throw new Error(
        "Cannot load SQLite: this runtime has no node:sqlite (Deno >= 2.2, Node >= 22.5 or Bun)",
        { cause: error },
      );
    }
    return { open: await loadBunSqlite(), driver: "bun:sqlite" };
  }
})();

/** Thrown when a database file cannot be opened or configured. */
export class DatabaseOpenError extends Error {
  /** The file that failed. */
  readonly path: string;
  /**
   * @param path the database file
   * @param reason what went wrong, in words
   * @param options the driver's error
   */
  constructor(path: string, reason: string, options?: ErrorOptions) {
    super(`Cannot open database '${path}': ${reason}`, options);
    this.name = "DatabaseOpenError";
    this.path = path;
  }
}

/**
 * Opens (or creates) a SQLite database file with the settings the queue relies on: WAL,
 * `synchronous=NORMAL` (or `FULL` with `{ durability: "full" }`), foreign keys, a short busy
 * timeout and a statement cache. Use one connection per process and file. Processes that open
 * the same file at once (even one that does not exist yet) wait for each other, up to
 * `busyRetryMs`: the call blocks meanwhile, as it is synchronous.
 *
 * @example Usage
 * ```ts
 * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
 *
 * const db = openDatabase(":memory:");
 * SqliteStorage.setup(db);
 * db.close();
 * ```
 */
export function openDatabase(path: string, options: OpenDatabaseOptions = {}): Database {
  const durability = options.durability ?? "normal";
  if (durability !== "normal" && durability !== "full") {
    throw new TypeError(
      `Cannot open database '${path}' as 'durability' must be "normal" or "full": current value is ${
        JSON.stringify(durability)
      }`,
    );
  }
  const busyTimeoutMs = options.busyTimeoutMs ?? 5;
  if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new RangeError(
      `Cannot open database '${path}' as 'busyTimeoutMs' must be a whole number >= 0: current value is ${busyTimeoutMs}`,
    );
  }
  // A deadline, never a timer: any number >= 0 works (Infinity: retry for as long as it takes).
  const busyRetryMs = options.busyRetryMs ?? 60_000;
  if (typeof busyRetryMs !== "number" || !(busyRetryMs >= 0)) {
    throw new RangeError(
      `Cannot open database '${path}' as 'busyRetryMs' must be a number >= 0: current value is ${busyRetryMs}`,
    );
  }
  const readOnly = options.readOnly ?? false;
  // To read a WAL database, even read-only, SQLite creates its -wal and -shm files when they are
  // missing, and a read-only connection cannot remove them: note whether they were there.
  const tidy = readOnly && !hasWalFiles(path) ? () => removeIdleWalFiles(path) : undefined;
  let native: NativeConnection;
  try {
    native = openNative(path, readOnly);
  } catch (error) {
    throw new DatabaseOpenError(path, describe(path, error), { cause: error });
  }
  try {
    // Processes that open a new file together wait for each other here: one of them creates the
    // file and switches it to WAL while the others find it locked.
    waitOutBusySync(
      (ms) => native.exec(`PRAGMA busy_timeout = ${ms}`),
      busyRetryMs,
      () => {
        // Reading the schema here makes a file that is not a database fail now, with its path.
        getOnce(native, "SELECT count(*) FROM sqlite_schema");
        if (!readOnly && path !== ":memory:" && path !== "") {
          const mode = getOnce(native, "PRAGMA journal_mode = WAL");
          if (String(mode?.journal_mode).toLowerCase() !== "wal") {
            throw new Error(
              `the file system does not support WAL (journal_mode is ${mode?.journal_mode})`,
            );
          }
        }
      },
    );
    native.exec(
      `PRAGMA busy_timeout = ${busyTimeoutMs};
       PRAGMA synchronous = ${durability === "full" ? "FULL" : "NORMAL"};
       PRAGMA foreign_keys = ON;
       PRAGMA temp_store = MEMORY;
       PRAGMA cache_size = -16000;`,
    );
  } catch (error) {
    try {
      native.close();
    } catch {
      // Nothing more to report: the open already failed.
    }
    tidy?.();
    throw new DatabaseOpenError(path, describe(path, error), { cause: error });
  }
  return new Connection(native, {
    path,
    driver,
    durability,
    busyRetryMs,
    busyTimeoutMs,
    ...(tidy ? { afterClose: tidy } : {}),
  });
}

/** Runs a statement once and frees it (bun:sqlite keeps a connection open while any is live). */
function getOnce(native: NativeConnection, sql: string): SqlRow | undefined {
  const statement = native.prepare(sql);
  try {
    return statement.get([]);
  } finally {
    statement.finalize?.();
  }
}

/** Whether `path` names no file on disk, or has a -wal or -shm file next to it. */
function hasWalFiles(path: string): boolean {
  if (path === "" || path === ":memory:" || path.startsWith("file:")) return true;
  return existsSync(`${path}-wal`) || existsSync(`${path}-shm`);
}

/**
 * Removes the empty -wal file and the -shm file that a read-only connection had SQLite create,
 * the way SQLite removes them itself: a connection that may write opens the file, reads, and
 * closes. Being the last connection open, it checkpoints an empty log (nothing is written to the
 * database) and deletes both; if any other connection has the file open, SQLite leaves them to
 * it. A log that is not empty holds someone's commits: it is left alone. Best effort: any error
 * leaves the files, which are harmless.
 */
function removeIdleWalFiles(path: string): void {
  const wal = statSync(`${path}-wal`, { throwIfNoEntry: false });
  if (wal?.size !== 0 || !existsSync(path)) return;
  let native: NativeConnection | undefined;
  try {
    native = openNative(path, false);
    native.exec("PRAGMA query_only = ON");
    getOnce(native, "SELECT count(*) FROM sqlite_schema");
  } catch {
    // Left as they are.
  } finally {
    try {
      native?.close();
    } catch {
      // Left as they are.
    }
  }
}

function describe(path: string, error: unknown): string {
  if (error instanceof BusyWaitExpired) return error.message;
  // SQLite says "unable to open" or, read-only, "disk I/O error".
  if (isDirectory(path)) return "it is a directory";
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { errcode?: unknown; errno?: unknown } | null)?.errcode ??
    (error as { errno?: unknown } | null)?.errno;
  if (/not a database|file is encrypted/i.test(message)) {
    return "the file is not a SQLite database or is corrupt";
  }
  if (code === 1544 || /READONLY_DIRECTORY/.test(String((error as { code?: unknown }).code))) {
    return "its directory is read-only, and SQLite needs to create the '-wal' and '-shm' files next to it";
  }
  if (/unable to open/i.test(message)) return whyNotOpened(path);
  if (/readonly|read-only/i.test(message)) return "the file or its directory is read-only";
  if (/malformed|corrupt/i.test(message)) return `the database is corrupt (${message})`;
  return message;
}

function isDirectory(path: string): boolean {
  if (path === "" || path === ":memory:" || path.startsWith("file:")) return false;
  try {
    return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
  } catch {
    return false;
  }
}

/** Why SQLite could not open `path` ("unable to open database file" says nothing more). */
function whyNotOpened(path: string): string {
  const fallback = "the file or its directory does not exist or is not accessible";
  if (path === "" || path === ":memory:" || path.startsWith("file:")) return fallback;
  try {
    const stat = statSync(path, { throwIfNoEntry: false });
    if (stat) {
      accessSync(path, constants.R_OK);
      return fallback;
    }
    const dir = dirname(path);
    const parent = statSync(dir, { throwIfNoEntry: false });
    if (!parent) return `its directory '${dir}' does not exist`;
    if (!parent.isDirectory()) return `'${dir}' is not a directory`;
    accessSync(dir, constants.W_OK);
    return fallback;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === "EACCES" || code === "EPERM") {
      return statSync(path, { throwIfNoEntry: false })
        ? "permission denied: the file is not readable"
        : `the file does not exist and its directory '${dirname(path)}' is read-only`;
    }
    return fallback;
  }
}
