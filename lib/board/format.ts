import type { TaskStatus } from "../../mod.ts";
import { type Html, html } from "./html.ts";

/** `2026-11-28 10:20:30` (UTC), with the ISO time in the element for machines. */
export function timeTag(ms: number | null | undefined): Html {
  if (ms === null || ms === undefined) return html`<span class="muted">–</span>`;
  const iso = new Date(ms).toISOString();
  return html`<time datetime="${iso}">${iso.slice(0, 19).replace("T", " ")}</time>`;
}

/** A coloured badge for a task's or run's state. */
export function badge(status: TaskStatus | string): Html {
  return html`<span class="badge s-${status}">${status}</span>`;
}

/** A whole number with thousands separators. */
export function count(n: number): string {
  return n.toLocaleString("en-US");
}

const PREVIEW_LIMIT = 64 * 1024;

/**
 * A value as readable JSON for a `<pre>`: bytes as hex, bigints as text; cut at 64 KiB with a
 * note, so a 5 MB payload does not make a 5 MB page.
 */
export function pretty(value: unknown): string {
  return prettyShown(value).text;
}

/** {@linkcode pretty}, and whether the text was cut at 64 KiB. */
export function prettyShown(value: unknown): { text: string; cut: boolean } {
  let text: string;
  try {
    text = JSON.stringify(value, jsonReplacer, 2) ?? String(value);
  } catch (error) {
    text = `(cannot show: ${error instanceof Error ? error.message : String(error)})`;
  }
  if (text.length <= PREVIEW_LIMIT) return { text, cut: false };
  return {
    text: `${text.slice(0, PREVIEW_LIMIT)}\n… (${
      count(text.length - PREVIEW_LIMIT)
    } more characters)`,
    cut: true,
  };
}

/** A size in bytes for people: `512 B`, `4.2 KB`, `1.0 MB` (powers of 1000). */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 999.95 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/**
 * One line of a value a listing did not read whole (see `TaskRecord.cut`): the start of its
 * text, cut at `max` characters, or nothing for a codec that does not write text.
 */
export function cutPreview(text: string | undefined, max = 80): string {
  if (text === undefined) return "";
  const line = text.replace(/\s+/g, " ");
  return `${line.slice(0, max - 1)}…`;
}

/** One line of a value, at most `max` characters. */
export function preview(value: unknown, max = 80): string {
  let text: string;
  try {
    text = JSON.stringify(value, jsonReplacer) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** JSON for values JSON cannot hold: bytes become `{ "$bytes": base64 }`, bigints text. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return { $bytes: toBase64(value) };
  if (typeof value === "bigint") return value.toString();
  return value;
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}
