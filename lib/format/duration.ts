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
