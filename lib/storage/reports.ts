/**
 * Progress and log lines a handler reports (`ctx.progress`, `ctx.log`): their types, checks and
 * bounds, shared by the worker that writes them and the reads that return them.
 *
 * @module
 */
import type { LogRow, TaskRow } from "../backend/types.ts";

/** A progress value: a number from 0 to 100, or a small JSON object. */
export type ProgressValue = number | Record<string, unknown>;

/**
 * The last progress a task's handler reported (see `TaskContext.progress`). It stays after the
 * task finishes (it shows how far the last attempt got) and is replaced by the next attempt's
 * first report: `attempt` says which attempt it belongs to.
 *
 * @example Read a task's progress
 * ```ts
 * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
 *
 * const db = openDatabase(":memory:");
 * SqliteStorage.setup(db);
 * const storage = new SqliteStorage(db, "imports");
 * const id = await storage.push({ file: "a.csv" });
 * const task = await storage.fetchById(id);
 * // No handler has reported yet: `progress` is absent.
 * if (task?.progress !== undefined) throw new Error("unexpected");
 * db.close();
 * ```
 */
export interface TaskProgress {
  /** What the handler passed to `ctx.progress`. */
  value: ProgressValue;
  /** The attempt that reported it. */
  attempt: number;
  /** When it was written (epoch ms; the worker's flush time). */
  at: number;
}

/** A line a task's handler logged (see `TaskContext.log`), as `Admin.logs` returns it. */
export interface TaskLogLine {
  /**
   * The line's position: increases with every line appended to the database; pass the last one
   * seen as `after` to read only newer lines.
   */
  seq: number;
  /** The attempt that logged it. */
  attempt: number;
  /** When it was logged (epoch ms, by the worker's clock). */
  at: number;
  line: string;
}

/** The most bytes (UTF-8) of a progress object's JSON. */
export const MAX_PROGRESS_BYTES = 4096;
/** The most lines kept per attempt (besides the marker lines when the bounds are hit). */
export const MAX_LOG_LINES = 1000;
/** The most bytes (UTF-8) of lines kept per attempt. */
export const MAX_LOG_BYTES = 64 * 1024;
/** A longer line is cut to this many bytes (UTF-8), ending with `…`. */
export const MAX_LOG_LINE_BYTES = 4096;
/**
 * How often a worker writes progress and log lines while no other write happens (they also ride
 * along with every flush that records outcomes or claims tasks).
 */
export const REPORT_INTERVAL_MS = 1000;

const utf8 = new TextEncoder();

/** The JSON of a valid progress value; throws a `TypeError` naming the problem otherwise. */
export function encodeProgress(value: unknown): string {
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0 || value > 100) {
      throw new TypeError(
        `ctx.progress(${value}): a number must be finite and from 0 to 100`,
      );
    }
    return JSON.stringify(value);
  }
  const isPlain = typeof value === "object" && value !== null && !Array.isArray(value) &&
    [Object.prototype, null].includes(Object.getPrototypeOf(value));
  if (!isPlain) {
    const what = value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
    throw new TypeError(
      `ctx.progress() takes a number from 0 to 100 or a plain JSON object, not ${what}`,
    );
  }
  let json: string;
  try {
    json = JSON.stringify(value);
  } catch (cause) {
    throw new TypeError(`ctx.progress(): the object cannot be written as JSON: ${cause}`, {
      cause,
    });
  }
  const bytes = utf8.encode(json).length;
  if (bytes > MAX_PROGRESS_BYTES) {
    throw new TypeError(
      `ctx.progress(): the object is ${bytes} bytes as JSON; at most ${MAX_PROGRESS_BYTES} are kept`,
    );
  }
  return json;
}

/** Cuts a line to `MAX_LOG_LINE_BYTES` bytes (UTF-8, never inside a character), marked `…`. */
export function cutLine(line: string): string {
  if (line.length * 3 <= MAX_LOG_LINE_BYTES) return line; // fits whatever its characters
  const bytes = utf8.encode(line);
  if (bytes.length <= MAX_LOG_LINE_BYTES) return line;
  let end = MAX_LOG_LINE_BYTES - 3; // room for "…"
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // not inside a character
  return new TextDecoder().decode(bytes.subarray(0, end)) + "…";
}

/** The UTF-8 size of a line. */
export function lineBytes(line: string): number {
  for (let i = 0; i < line.length; i++) {
    if (line.charCodeAt(i) > 0x7f) return utf8.encode(line).length;
  }
  return line.length; // ASCII: one byte a character
}

/** The record's progress, from a row read by id. */
export function progressOf(row: TaskRow): TaskProgress | undefined {
  if (row.progress === null || row.progress === undefined) return undefined;
  return {
    value: JSON.parse(row.progress) as ProgressValue,
    attempt: row.progress_attempt ?? 0,
    at: row.progress_at ?? 0,
  };
}

/** A stored log line as returned to callers. */
export function toLogLine(row: LogRow): TaskLogLine {
  return { seq: Number(row.seq), attempt: row.attempt, at: Number(row.at), line: row.line };
}
