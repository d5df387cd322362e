import type { TaskStatus } from "../store/tasks.ts";
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
  let text: string;
  try {
    text = JSON.stringify(value, jsonReplacer, 2) ?? String(value);
  } catch (error) {
    text = `(cannot show: ${error instanceof Error ? error.message : String(error)})`;
  }
  if (text.length <= PREVIEW_LIMIT) return text;
  return `${text.slice(0, PREVIEW_LIMIT)}\n… (${
    count(text.length - PREVIEW_LIMIT)
  } more characters)`;
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
