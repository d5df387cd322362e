// Which file problem a SQLite driver error reports: a copy of the library's `fileProblemOf`
// (lib/sqlite/file_error.ts), which is not public; the CLI uses only public entry points.
import { DatabaseFileError, type DatabaseFileProblem } from "../../mod.ts";

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
