/**
 * What is wrong with a database file, as a {@linkcode DatabaseFileError} reports it:
 * `"full"` (the disk, or the database's `max_page_count`), `"read-only"` (the file or its
 * directory), `"corrupt"` (the file is damaged or not a SQLite database), `"io"` (the disk failed).
 */
export type DatabaseFileProblem = "full" | "read-only" | "corrupt" | "io";

const PHRASES: Record<DatabaseFileProblem, string> = {
  "full": "the database or disk is full",
  "read-only": "the file or its directory is read-only",
  "corrupt": "the file is corrupt or not a SQLite database",
  "io": "the disk reported an I/O error",
};

/**
 * Thrown when SQLite cannot use the database file itself: the disk (or the database's
 * `max_page_count`) is full, the file or its directory is read-only, the file is corrupt, or the
 * disk reported an I/O error. Nothing of the failed statement or transaction was written. The
 * message names the operation and the file; the driver's error is the `cause`.
 *
 * A full disk is temporary: the same write succeeds once space returns (workers retry by
 * themselves). The other problems need an operator.
 *
 * @example Back off while the disk is full
 * ```ts
 * import { DatabaseFileError, openDatabase, SqliteStorage } from "@apalis/sqlite";
 *
 * const db = openDatabase(":memory:");
 * SqliteStorage.setup(db);
 * const queue = new SqliteStorage<string>(db, "email");
 * try {
 *   await queue.push("a@b.c");
 * } catch (error) {
 *   if (error instanceof DatabaseFileError && error.problem === "full") {
 *     // retry later: nothing was written
 *   } else {
 *     throw error;
 *   }
 * }
 * db.close();
 * ```
 */
export class DatabaseFileError extends Error {
  /** The database file. */
  readonly path: string;
  /** What is wrong with it. */
  readonly problem: DatabaseFileProblem;
  /**
   * @param path the database file
   * @param problem what is wrong with it
   * @param action what was attempted, e.g. `"push task to queue 'email'"` (default: use it)
   * @param options the driver's error as `cause`
   */
  constructor(
    path: string,
    problem: DatabaseFileProblem,
    action?: string,
    options?: ErrorOptions,
  ) {
    const where = action === undefined
      ? `Cannot use database '${path}'`
      : `Cannot ${action} in database '${path}'`;
    super(`${where}: ${PHRASES[problem]}${detailOf(problem, options?.cause)}`, options);
    this.name = "DatabaseFileError";
    this.path = path;
    this.problem = problem;
  }

  /**
   * Which file problem an error of either SQLite driver reports (by its code, else by SQLite's
   * message), or `undefined` for any other error: for code that runs its own statements on the
   * connection and wants to tell a full disk or a read-only file from the rest.
   *
   * @example Usage
   * ```ts
   * import { DatabaseFileError } from "@apalis/sqlite";
   *
   * const error = new Error("attempt to write a readonly database");
   * if (DatabaseFileError.problemOf(error) !== "read-only") throw new Error("unexpected");
   * ```
   */
  static problemOf(error: unknown): DatabaseFileProblem | undefined {
    return fileProblemOf(error);
  }
}

// Primary result codes (the low byte of extended codes).
const PROBLEM_BY_CODE = new Map<number, DatabaseFileProblem>([
  [13, "full"], // SQLITE_FULL
  [8, "read-only"], // SQLITE_READONLY
  [11, "corrupt"], // SQLITE_CORRUPT
  [26, "corrupt"], // SQLITE_NOTADB
  [10, "io"], // SQLITE_IOERR
]);

const PROBLEM_BY_NAME = new Map<string, DatabaseFileProblem>([
  ["SQLITE_FULL", "full"],
  ["SQLITE_READONLY", "read-only"],
  ["SQLITE_CORRUPT", "corrupt"],
  ["SQLITE_NOTADB", "corrupt"],
  ["SQLITE_IOERR", "io"],
]);

/** Which file problem a driver error reports, if any (both drivers, by code or by message). */
export function fileProblemOf(error: unknown): DatabaseFileProblem | undefined {
  if (error instanceof DatabaseFileError) return error.problem;
  if (!(error instanceof Error)) return undefined;
  const coded = error as Error & { errcode?: unknown; errno?: unknown; code?: unknown };
  for (const code of [coded.errcode, coded.errno]) {
    if (typeof code === "number") {
      const problem = PROBLEM_BY_CODE.get(code & 0xff);
      if (problem) return problem;
    }
  }
  if (typeof coded.code === "string") {
    const problem = PROBLEM_BY_NAME.get(coded.code.replace(/_[A-Z]+$/, "")) ??
      PROBLEM_BY_NAME.get(coded.code);
    if (problem) return problem;
  }
  // node:sqlite's exec() reports no code: fall back on SQLite's own messages.
  const message = error.message;
  if (/database or disk is full/i.test(message)) return "full";
  if (/attempt to write a readonly database/i.test(message)) return "read-only";
  if (/database disk image is malformed|file is not a database/i.test(message)) return "corrupt";
  if (/disk I\/O error/i.test(message)) return "io";
  return undefined;
}

/**
 * The error to throw for `error`: a {@linkcode DatabaseFileError} naming `path` (and `action`,
 * when given) for a file problem, `error` itself otherwise. Re-wrapping a `DatabaseFileError`
 * with an action keeps its driver cause.
 */
export function toFileError(path: string, error: unknown, action?: string): unknown {
  if (error instanceof DatabaseFileError) {
    if (action === undefined) return error;
    return new DatabaseFileError(error.path, error.problem, action, { cause: error.cause });
  }
  const problem = fileProblemOf(error);
  return problem === undefined
    ? error
    : new DatabaseFileError(path, problem, action, { cause: error });
}

function detailOf(problem: DatabaseFileProblem, cause: unknown): string {
  if (!(cause instanceof Error)) return "";
  const message = cause.message.trim();
  if (message === "" || PHRASES[problem].includes(message)) return "";
  return ` (${message})`;
}
