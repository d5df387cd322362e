// A queue's limits in words, shared by the CLI's tables and the board's pages.

/** Limits as the CLI and board show them (the shape of `QueueLimits`). */
export interface LimitsShown {
  rate?: { limit: number; perMs: number };
  concurrency?: number;
  groupConcurrency?: number;
}

/** `100/1s, concurrency 5, 1 per group`, or `-` for none. */
export function formatLimits(limits: LimitsShown): string {
  const parts: string[] = [];
  if (limits.rate) parts.push(`${limits.rate.limit}/${windowText(limits.rate.perMs)}`);
  if (limits.concurrency !== undefined) parts.push(`concurrency ${limits.concurrency}`);
  if (limits.groupConcurrency !== undefined) parts.push(`${limits.groupConcurrency} per group`);
  return parts.length === 0 ? "-" : parts.join(", ");
}

const UNITS: [string, number][] = [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1000]];

/** A window in the largest unit that divides it: `1s`, `90s`, `5m`, `250ms`. */
function windowText(ms: number): string {
  for (const [unit, size] of UNITS) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}
