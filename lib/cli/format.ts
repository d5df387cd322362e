import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { UsageError } from "./errors.ts";
import type { CliIo } from "./io.ts";
import { DURATION_UNITS, parseDurationText } from "../format/duration.ts";

export { formatAgo, formatDuration } from "../format/duration.ts";

/**
 * Parses a duration like `500ms`, `5s`, `1.5m`, `2h`, `7d` or `2w` into milliseconds; `0` needs
 * no unit. Throws a `UsageError` naming the option otherwise: a number without a unit (`5`) is
 * refused with a suggestion (`5s` or `5ms`), as it is too easy to mean seconds.
 *
 * @example Usage
 * ```ts ignore
 * parseDuration("1.5s", "--timeout"); // 1500
 * parseDuration("30", "--timeout"); // UsageError: option '--timeout' needs a unit: '30' could be 30s or 30ms …
 * ```
 */
export function parseDuration(text: string, option: string): number {
  const ms = parseDurationText(text);
  if (ms === undefined) {
    throw new UsageError(
      `option '${option}' must be a duration like 500ms, 5s, 10m, 2h or 7d: got '${text}'`,
    );
  }
  if (ms === "no unit") {
    const trimmed = text.trim();
    throw new UsageError(
      `option '${option}' needs a unit: '${trimmed}' could be ${trimmed}s or ${trimmed}ms (units: ${
        Object.keys(DURATION_UNITS).join(", ")
      })`,
    );
  }
  return ms;
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
};

/**
 * Parses a size in bytes like `65536`, `512KiB`, `16MiB` or `1GiB` (`K`, `M`, `G` too, all
 * 1024-based) and checks it against `min` and `max`; throws a `UsageError` naming the option
 * otherwise. `16MB` is refused as ambiguous (1000- or 1024-based), with a suggestion.
 *
 * @example Usage
 * ```ts ignore
 * parseSize("16MiB", "--max-output", { max: 256 * 1024 ** 2 }); // 16777216
 * ```
 */
export function parseSize(
  text: string,
  option: string,
  { min = 1, max = Number.MAX_SAFE_INTEGER }: { min?: number; max?: number } = {},
): number {
  const trimmed = text.trim();
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(trimmed);
  const [, number, suffix = ""] = match ?? [];
  const unit = suffix.toLowerCase();
  if (/^[kmg]b$/.test(unit)) {
    throw new UsageError(
      `option '${option}' takes 1024-based units (KiB, MiB, GiB): got '${text}'; did you mean '${number}${
        unit[0]!.toUpperCase()
      }iB'?`,
    );
  }
  const scale = Object.hasOwn(SIZE_UNITS, unit) ? SIZE_UNITS[unit]! : undefined;
  if (number === undefined || scale === undefined) {
    throw new UsageError(
      `option '${option}' must be a size like 65536, 512KiB or 16MiB: got '${text}'`,
    );
  }
  const bytes = Math.round(Number(number) * scale);
  if (bytes < min) {
    throw new UsageError(`option '${option}' must be at least ${formatSize(min)}: got '${text}'`);
  }
  if (bytes > max) {
    throw new UsageError(`option '${option}' must be at most ${formatSize(max)}: got '${text}'`);
  }
  return bytes;
}

/** `16 MiB`, `512 KiB`, `1 byte`, `1000 bytes`: the largest 1024-based unit that is exact. */
export function formatSize(bytes: number): string {
  for (const [unit, scale] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (bytes >= scale && bytes % scale === 0) return `${bytes / scale} ${unit}`;
  }
  return bytes === 1 ? "1 byte" : `${bytes} bytes`;
}

/** Parses a whole number option; throws a `UsageError` naming it otherwise. */
export function parseInteger(text: string, option: string, min = -Infinity): number {
  const value = Number(text);
  if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min) {
    throw new UsageError(
      `option '${option}' must be a whole number${
        min > -Infinity ? ` >= ${min}` : ""
      }: got '${text}'`,
    );
  }
  return value;
}

/** An epoch-millisecond time as ISO 8601, or `-`. */
export function formatTime(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? "-" : new Date(ms).toISOString();
}

/** Whether output may be coloured: a terminal, and no `NO_COLOR`. */
export function useColor(io: CliIo): boolean {
  return io.isTerminal && !io.env.NO_COLOR;
}

const STYLES = { bold: 1, dim: 2, red: 31, green: 32, yellow: 33, blue: 34, cyan: 36 } as const;

/** Wraps `text` in an ANSI style when colour is on. */
export function paint(io: CliIo, style: keyof typeof STYLES, text: string): string {
  return useColor(io) ? `\x1b[${STYLES[style]}m${text}\x1b[0m` : text;
}

/** The colour of a task state. */
export function statusStyle(status: string): keyof typeof STYLES {
  switch (status) {
    case "done":
      return "green";
    case "failed":
      return "yellow";
    case "killed":
      return "red";
    case "running":
    case "queued":
      return "cyan";
    default:
      return "dim";
  }
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

/**
 * Renders rows as an aligned table with a header. Cells may carry ANSI colour; widths ignore it.
 * Columns whose header is in `right` are right-aligned (numbers).
 */
export function table(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  options: { right?: readonly string[] } = {},
): string {
  const width = (text: string) => [...text.replace(ANSI, "")].length;
  const widths = headers.map((header, i) =>
    Math.max(width(header), ...rows.map((row) => width(row[i] ?? "")))
  );
  const right = new Set(options.right ?? []);
  const line = (cells: readonly string[]) =>
    cells.map((cell, i) => {
      const pad = " ".repeat(widths[i]! - width(cell));
      return right.has(headers[i]!) ? pad + cell : cell + pad;
    }).join("  ").trimEnd();
  return [line(headers), ...rows.map(line)].join("\n") + "\n";
}

/** JSON for `--json` output: two-space indented, one trailing newline. */
export function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + "\n";
}

/** `text` on one line, cut to `max` characters with an ellipsis. */
export function truncate(text: string, max: number): string {
  const line = text.replace(/\s+/g, " ").trim();
  const chars = [...line];
  return chars.length <= max ? line : `${chars.slice(0, max - 1).join("")}…`;
}

/** `1 task`, `3 tasks`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** `parseArgs`'s result for {@linkcode parseOptions}. */
export type ParsedOptions<O extends ParseArgsOptionsConfig> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: true }>
>;

/**
 * Parses a command's own arguments strictly (`node:util` `parseArgs`); its errors become
 * `UsageError`s that point to the command's help.
 */
export function parseOptions<const O extends ParseArgsOptionsConfig>(
  command: string,
  args: string[],
  options: O,
): ParsedOptions<O> {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (error) {
    const message = (error instanceof Error ? error.message : String(error)).replace(/\s*\n/g, " ");
    throw new UsageError(`${message} (see 'apalis ${command} --help')`);
  }
}

/**
 * Checks a command's positional arguments against their `names` (the first `required` of them
 * must be present) and returns them; throws a `UsageError` naming what is missing or extra.
 */
export function expectPositionals(
  command: string,
  positionals: readonly string[],
  names: readonly string[],
  required: number = names.length,
): (string | undefined)[] {
  if (positionals.length < required) {
    throw new UsageError(
      `missing ${names[positionals.length]} (see 'apalis ${command} --help')`,
    );
  }
  if (positionals.length > names.length) {
    throw new UsageError(
      `unexpected argument '${positionals[names.length]}' (see 'apalis ${command} --help')`,
    );
  }
  return names.map((_, i) => positionals[i]);
}
