import type { TaskContext } from "../../../mod.ts";

/**
 * Runs one task for `apalis work` and resolves with its result: usable as a worker's handler.
 * `close()`, when present, resolves once nothing the runner started is left behind.
 */
export interface Runner {
  (payload: unknown, ctx: TaskContext): Promise<unknown>;
  close?(): Promise<void>;
}

/** The default cap on a command's stdout or a response's body, stored as the result. */
export const DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024;

/** The largest cap `--max-output` accepts: a result is one string in memory and one row. */
export const MAX_OUTPUT_LIMIT = 256 * 1024 * 1024;

/** How much of a failed command's stderr (or a failed request's body) is kept, in characters. */
export const ERROR_TEXT_MAX = 4096;

/** A failed command or request: no stack (it would show this program's internals). */
export class RunnerError extends Error {
  constructor(name: "CommandError" | "HttpError", message: string) {
    super(message);
    this.name = name;
    this.stack = undefined;
  }
}

/** Text with its parsed JSON value when it is JSON; trimmed; `undefined` when empty. */
export function parseOutput(text: string): unknown {
  const trimmed = text.trim();
  if (trimmed === "") return undefined;
  try {
    return JSON.parse(trimmed);
  } catch {
    return trimmed;
  }
}

/** `text` trimmed, cut to its first (`head`) or last (`tail`) `ERROR_TEXT_MAX` characters. */
export function excerpt(text: string, keep: "head" | "tail"): string {
  const trimmed = text.trim();
  if (trimmed.length <= ERROR_TEXT_MAX) return trimmed;
  return keep === "head"
    ? `${trimmed.slice(0, ERROR_TEXT_MAX)}…`
    : `…${trimmed.slice(-ERROR_TEXT_MAX)}`;
}

/** `Name: message` for an error, the text of anything else. */
export function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
