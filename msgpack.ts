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
import type { Codec } from "./lib/storage/codec.ts";

/** Encodes payloads and results as MessagePack (binary data round-trips as `Uint8Array`). */
export const MsgPackCodec: Codec = {
  name: "msgpack",
  encode: (value: unknown): Uint8Array => encode(value),
  decode: (bytes: Uint8Array): unknown => decode(bytes),
};
