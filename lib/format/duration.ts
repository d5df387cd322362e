// Durations in words, shared by the CLI's tables and the board's pages.

/** A short human duration: `850ms`, `12s`, `3m 4s`, `2h 5m`, `3d 4h`. */
export function formatDuration(ms: number): string {
  const abs = Math.abs(ms);
  const sign = ms < 0 ? "-" : "";
  if (abs < 1000) return `${sign}${Math.round(abs)}ms`;
  const s = Math.floor(abs / 1000);
  if (s < 60) return `${sign}${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${sign}${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${sign}${h}h ${m % 60}m`;
  return `${sign}${Math.floor(h / 24)}d ${h % 24}h`;
}

/** `when` relative to `now`: `12s ago`, `in 3m 4s`, or `-`. */
export function formatAgo(when: number | null | undefined, now: number = Date.now()): string {
  if (when === null || when === undefined) return "-";
  const ms = now - when;
  return ms >= 0 ? `${formatDuration(ms)} ago` : `in ${formatDuration(-ms)}`;
}

/** The units of a duration in text, in milliseconds. */
export const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * Reads a duration like `500ms`, `5s`, `1.5m`, `2h`, `7d` or `2w` as milliseconds (`0` needs no
 * unit): `undefined` when it is not one, `"no unit"` for a number without a unit (`30`: seconds
 * or milliseconds?).
 */
export function parseDurationText(text: string): number | "no unit" | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)?$/.exec(text.trim());
  if (!match) return undefined;
  const [, number, unit] = match;
  if (unit === undefined) return Number(number) === 0 ? 0 : "no unit";
  return Math.round(Number(number) * DURATION_UNITS[unit]!);
}
