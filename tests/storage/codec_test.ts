import assert from "node:assert/strict";
import { type Codec, JsonCodec, SqliteStorage, WorkerBuilder } from "../../mod.ts";
import { MsgPackCodec } from "../../msgpack.ts";
import { runUntilFinished, tempDatabase } from "../_helpers.ts";

/** Runs a worker over `storage` until every id has finished, then stops it. */
async function work<T>(
  storage: SqliteStorage<T>,
  ids: readonly string[],
  handler: (args: T) => unknown,
): Promise<void> {
  const worker = new WorkerBuilder("codec-worker")
    .backend(storage)
    .handleSignals(false)
    .build((args) => handler(args));
  await runUntilFinished(worker, storage, ids);
}

function storedArgs(storage: SqliteStorage<unknown>, id: string): Uint8Array {
  const row = storage.db.get<{ args: Uint8Array }>("SELECT args FROM apalis_tasks WHERE id = ?", [
    id,
  ]);
  assert.ok(row, `no row for ${id}`);
  return row.args;
}

Deno.test("JsonCodec.encode() and decode() round-trip JSON values", () => {
  assert.equal(JsonCodec.name, "json");
  const values = [
    { to: "ada@example.com", tags: ["a", "b"], nested: { n: 1.5, ok: true, none: null } },
    "unicode ✓ 日本語 🚀",
    0,
    -12.25,
    true,
    null,
    [],
    [1, [2, [3]]],
  ];
  for (const value of values) {
    const bytes = JsonCodec.encode(value);
    assert.ok(bytes instanceof Uint8Array);
    assert.deepEqual(JsonCodec.decode(bytes), value);
  }
  assert.equal(new TextDecoder().decode(JsonCodec.encode({ a: 1 })), '{"a":1}');
  assert.throws(() => JsonCodec.encode(undefined), TypeError); // it would become null
  assert.deepEqual(JsonCodec.decode(JsonCodec.encode({ a: undefined })), {}); // nested: JSON rules
  assert.throws(() => JsonCodec.decode(new Uint8Array([0xff, 0xfe, 0x00])));
  assert.throws(() => JsonCodec.decode(new TextEncoder().encode("{not json")));
  assert.throws(() => JsonCodec.encode(10n));
});

Deno.test("MsgPackCodec round-trips a Uint8Array payload and result exactly through push and a worker", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<Uint8Array>(tmp.db, "blobs").withCodec(MsgPackCodec);
  assert.equal(storage.codec, MsgPackCodec);
  assert.equal(storage.queue, "blobs");
  const payload = new Uint8Array(300);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) % 256; // every byte value
  const id = await storage.push(payload);
  let received: unknown;
  await work(storage, [id], (bytes) => {
    received = bytes;
    return bytes.slice().reverse();
  });
  assert.ok(received instanceof Uint8Array, "the handler gets a Uint8Array");
  assert.deepEqual(received, payload);
  const [record] = await storage.waitFor([id]);
  assert.equal(record?.status, "done");
  assert.equal(record?.decodeError, undefined);
  assert.ok(record?.args instanceof Uint8Array);
  assert.deepEqual(record.args, payload);
  assert.ok(record.lastResult instanceof Uint8Array, "the result comes back as a Uint8Array");
  assert.deepEqual(record.lastResult, payload.slice().reverse());
  // Stored as MessagePack (bin 16 header), not as JSON text.
  assert.equal(storedArgs(storage, id)[0], 0xc5);
});

Deno.test("SqliteStorage uses a custom codec for arguments and results when one is given", async () => {
  await using tmp = await tempDatabase();
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  let encodes = 0;
  let decodes = 0;
  const tagged: Codec = {
    name: "tagged",
    encode(value) {
      encodes++;
      return encoder.encode(`v1:${JSON.stringify(value)}`);
    },
    decode(bytes) {
      decodes++;
      const text = decoder.decode(bytes);
      if (!text.startsWith("v1:")) throw new Error(`unknown tag in ${JSON.stringify(text)}`);
      return JSON.parse(text.slice(3));
    },
  };
  const storage = new SqliteStorage<{ n: number }>(tmp.db, "custom", { codec: tagged });
  const id = await storage.push({ n: 20 });
  assert.equal(decoder.decode(storedArgs(storage, id)), 'v1:{"n":20}');
  let received: unknown;
  await work(storage, [id], (args) => {
    received = args;
    return { doubled: args.n * 2 };
  });
  assert.deepEqual(received, { n: 20 });
  const record = await storage.fetchById(id);
  assert.equal(record?.status, "done");
  assert.deepEqual(record?.lastResult, { doubled: 40 });
  assert.ok(encodes >= 2, `arguments and result are encoded with it (${encodes})`);
  assert.ok(decodes >= 2, `arguments and result are decoded with it (${decodes})`);

  // Its errors surface at push time, naming the codec; nothing is written.
  const refusing: Codec = {
    name: "refusing",
    encode: () => {
      throw new Error("cannot encode this");
    },
    decode: () => null,
  };
  await assert.rejects(
    storage.withCodec(refusing).push({ n: 1 }),
    (error: unknown) =>
      error instanceof TypeError && error.message.includes("refusing") &&
      error.message.includes("cannot encode this"),
  );
  assert.equal((await storage.stats()).total, 1);
});

Deno.test("SqliteStorage.push() rejects with a TypeError naming the codec when JSON cannot encode the arguments", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<unknown>(tmp.db, "q");
  await assert.rejects(
    storage.push({ big: 10n }),
    (error: unknown) => error instanceof TypeError && error.message.includes("json"),
  );
  assert.equal((await storage.stats()).total, 0);
});

Deno.test("SqliteStorage.fetchById() reports decodeError instead of throwing when the payload was written by another codec", async () => {
  await using tmp = await tempDatabase();
  const packed = new SqliteStorage<unknown>(tmp.db, "mixed").withCodec(MsgPackCodec);
  const id = await packed.push({ bytes: new Uint8Array([0xff, 0x00, 0x81]), n: 1 });
  const json = new SqliteStorage<unknown>(tmp.db, "mixed");
  const record = await json.fetchById(id);
  assert.ok(record, "the record is still returned");
  assert.equal(record.id, id);
  assert.equal(record.status, "pending");
  assert.equal(record.args, undefined);
  assert.equal(typeof record.decodeError, "string");
  assert.match(record.decodeError!, /json/);
  // Listings do not throw either.
  const [listed] = await json.listTasks({ queue: "mixed" });
  assert.equal(listed?.id, id);
  assert.equal(typeof listed?.decodeError, "string");
  // The right codec still reads it.
  const back = await packed.fetchById(id);
  assert.equal(back?.decodeError, undefined);
  assert.deepEqual(back?.args, { bytes: new Uint8Array([0xff, 0x00, 0x81]), n: 1 });
});
