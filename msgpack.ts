/**
 * A MessagePack codec, kept in its own module so the core has no third-party dependency.
 *
 * @example Usage
 * ```ts
 * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
 * import { MsgPackCodec } from "@apalis/sqlite/msgpack";
 *
 * const db = openDatabase(":memory:");
 * SqliteStorage.setup(db);
 * const storage = new SqliteStorage<Uint8Array>(db, "blobs").withCodec(MsgPackCodec);
 * await storage.push(new Uint8Array([1, 2, 3]));
 * db.close();
 * ```
 *
 * @module
 */
import { decode, encode } from "@msgpack/msgpack";
import { type Codec, silentlyChanged } from "./lib/storage/codec.ts";

/**
 * Encodes payloads and results as MessagePack (binary data round-trips as `Uint8Array`).
 * MessagePack strings are UTF-8, which cannot hold a lone surrogate: a string containing one is
 * refused with a `TypeError` naming where it is (the encoder would otherwise turn long ones into
 * U+FFFD and keep short ones, so data would change silently). JSON keeps them. Like the JSON
 * codec it refuses a top-level `undefined`, function, Symbol, Map or Set (it keeps NaN and
 * ±Infinity).
 */
export const MsgPackCodec: Codec = {
  name: "msgpack",
  encode: (value: unknown): Uint8Array => {
    const changed = silentlyChanged(value, false);
    if (changed !== undefined) throw new TypeError(`MessagePack cannot hold ${changed}`);
    const bytes = encode(value); // first: it refuses nesting deeper than 100 on its own
    assertWellFormed(value, "the value", 0);
    return bytes;
  },
  decode: (bytes: Uint8Array): unknown => decode(bytes),
};

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function wellFormed(text: string): boolean {
  const native = (text as { isWellFormed?: () => boolean }).isWellFormed;
  return native ? native.call(text) : !LONE_SURROGATE.test(text);
}

function assertWellFormed(value: unknown, where: string, depth: number): void {
  if (typeof value === "string") {
    if (!wellFormed(value)) {
      throw new TypeError(
        `MessagePack cannot hold ${where}: the string contains a lone surrogate (not valid UTF-8)`,
      );
    }
    return;
  }
  if (value === null || typeof value !== "object" || depth > 100) return;
  if (ArrayBuffer.isView(value) || value instanceof Date) return;
  if (Array.isArray(value)) {
    value.forEach((item, i) => assertWellFormed(item, `${where}[${i}]`, depth + 1));
    return;
  }
  for (const [key, item] of Object.entries(value)) {
    if (!wellFormed(key)) {
      throw new TypeError(
        `MessagePack cannot hold a key of ${where}: it contains a lone surrogate (not valid UTF-8)`,
      );
    }
    assertWellFormed(item, `${where}.${key}`, depth + 1);
  }
}
