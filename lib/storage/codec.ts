/**
 * Turns payloads and results into bytes and back. The storage's codec is used for task
 * arguments and handler results.
 *
 * @example A codec that stores strings as UTF-8
 * ```ts
 * import type { Codec } from "@apalis/sqlite";
 *
 * const text: Codec = {
 *   name: "text",
 *   encode: (value) => new TextEncoder().encode(String(value)),
 *   decode: (bytes) => new TextDecoder().decode(bytes),
 * };
 * ```
 */
export interface Codec {
  /** A short name, shown in errors. */
  readonly name: string;
  /** Encodes a value; throws when it cannot be represented. */
  encode(value: unknown): Uint8Array;
  /** Decodes bytes written by {@linkcode Codec.encode}; throws on bytes it cannot read. */
  decode(bytes: Uint8Array): unknown;
  /**
   * For a codec whose bytes are always UTF-8 text (JSON): decodes that text, as
   * {@linkcode Codec.decode} would decode its bytes. Workers then read payloads from the database
   * as strings, which both runtimes hand over faster than bytes (a drain of tiny tasks: 12 %).
   * Payloads that are not exactly valid UTF-8 still go to {@linkcode Codec.decode} as bytes.
   */
  decodeText?(text: string): unknown;
  /**
   * For a codec whose bytes are always UTF-8 text (JSON): the text {@linkcode Codec.encode}
   * would return the bytes of. Workers then hand results to SQLite as text, which stores its
   * UTF-8 bytes, without encoding them in JavaScript first.
   */
  encodeText?(value: unknown): string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * The default codec: JSON text as UTF-8 bytes. It refuses, with a `TypeError`, a top-level value
 * JSON would silently change: `undefined`, a function, a Symbol, NaN and ±Infinity (stored as
 * `null`), a Map or a Set (stored as `{}`). Inside objects and arrays JSON's own rules apply (an
 * `undefined` property is left out, NaN becomes `null`).
 *
 * @example Usage
 * ```ts
 * import { JsonCodec } from "@apalis/sqlite";
 *
 * const bytes = JsonCodec.encode({ to: "a@b.c" });
 * const back = JsonCodec.decode(bytes) as { to: string };
 * if (back.to !== "a@b.c") throw new Error("round trip failed");
 * ```
 */
export const JsonCodec: Codec = {
  name: "json",
  encode(value: unknown): Uint8Array {
    return encoder.encode(jsonText(value));
  },
  decode(bytes: Uint8Array): unknown {
    return JSON.parse(decoder.decode(bytes));
  },
  decodeText(text: string): unknown {
    return JSON.parse(text);
  },
  encodeText: jsonText,
};

/** JSON text of `value`; refuses a top-level value JSON would silently change. */
function jsonText(value: unknown): string {
  const changed = silentlyChanged(value, true);
  if (changed !== undefined) throw new TypeError(`JSON cannot hold ${changed}`);
  return JSON.stringify(value);
}

/**
 * How a codec would silently change `value` at the top level, as words for an error: `undefined`,
 * a function and a Symbol become `null`, a Map and a Set become `{}`, and (for JSON, when
 * `nonFinite`) NaN and ±Infinity become `null`. `undefined` when the value is kept. Only the top
 * level is checked: a push must stay cheap (nested values follow the codec's own rules).
 */
export function silentlyChanged(value: unknown, nonFinite: boolean): string | undefined {
  switch (typeof value) {
    case "object":
      if (value instanceof Map) {
        return "a Map (it would be stored as {}; pass Object.fromEntries(map))";
      }
      if (value instanceof Set) return "a Set (it would be stored as {}; pass [...set])";
      return undefined;
    case "number":
      return nonFinite && !Number.isFinite(value)
        ? `${value} (it would be stored as null)`
        : undefined;
    case "undefined":
      return "undefined (it would be stored as null; pass null)";
    case "function":
      return "a function (it would be stored as null)";
    case "symbol":
      return "a Symbol (it would be stored as null)";
    default:
      return undefined;
  }
}

/**
 * Whether `text`, read from a payload of `bytes` bytes as text, spells those bytes exactly: SQLite
 * and the drivers mend what is not valid UTF-8 (U+FFFD for each bad sequence) and Deno's ends the
 * text at a NUL byte, so a payload that is not exactly UTF-8 text shows in the text's UTF-8 size
 * or a U+FFFD (which then may also be genuine: the caller reads the bytes to find out).
 */
export function isExactText(text: string, bytes: number): boolean {
  if (text.includes("\uFFFD")) return false;
  if (text.length === bytes) return true; // one byte per character: ASCII, the common case
  let size = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) size += 1;
    else if (code < 0x800) size += 2;
    else if (code >= 0xd800 && code < 0xdc00) {
      size += 4; // a surrogate pair: one 4-byte character
      i++;
    } else size += 3;
  }
  return size === bytes;
}
