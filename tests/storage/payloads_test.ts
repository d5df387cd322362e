/**
 * Big and odd payloads: each goes push -> a worker's handler -> the stored result -> fetchById,
 * and must come back exactly.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Codec, JsonCodec, SqliteStorage, WorkerBuilder } from "../../mod.ts";
import { MsgPackCodec } from "../../msgpack.ts";
import { runUntilFinished, tempDatabase } from "../_helpers.ts";

/**
 * Pushes each of `payloads` on a fresh queue with `codec`, runs a worker whose handler records
 * what it receives and returns `result(args)`, and returns what the handler saw and what
 * `fetchById` reads back.
 */
async function roundTrip<T>(
  codec: Codec,
  payloads: readonly T[],
  result: (args: T) => unknown = (args) => args,
): Promise<{ received: unknown[]; records: { args: unknown; lastResult: unknown }[] }> {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<T>(tmp.db, "payloads").withCodec(codec);
  const ids: string[] = [];
  for (const payload of payloads) ids.push(await storage.push(payload));
  const received = new Map<string, unknown>();
  const worker = new WorkerBuilder<T>("payload-worker")
    .backend(storage)
    .handleSignals(false)
    .build((args, ctx) => {
      received.set(ctx.taskId, args);
      return result(args);
    });
  await runUntilFinished(worker, storage, ids, 60_000);
  const records = [];
  for (const id of ids) {
    const record = await storage.fetchById(id);
    assert.ok(record, `task ${id} exists`);
    assert.equal(record.status, "done", `task ${id} is done (${record.lastError?.message})`);
    assert.equal(record.decodeError, undefined);
    records.push({ args: record.args, lastResult: record.lastResult });
  }
  return { received: ids.map((id) => received.get(id)), records };
}

/** A deterministic pseudo-random byte sequence that holds every byte value. */
function bytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = i < 256 ? i : x >>> 24;
  }
  return out;
}

/** `depth` levels of alternating objects and arrays around a string. */
function nested(depth: number): unknown {
  let value: unknown = "bottom";
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? { level: i, next: value } : [i, value];
  return value;
}

const FIVE_MB = 5 * 1024 * 1024;

Deno.test("SqliteStorage round-trips a 5 MB JSON payload and result exactly through push, a worker and fetchById", async () => {
  // Text with one-, two-, three- and four-byte UTF-8 characters, so no run of it repeats simply.
  const alphabet = ["a", "Z", "7", " ", "é", "ß", "日", "本", "€", "😀", "𝄞", "\n", '"', "\\"];
  const parts: string[] = [];
  let length = 0;
  for (let i = 0; length < FIVE_MB; i++) {
    const part = alphabet[(i * 7 + (i >> 5)) % alphabet.length]!;
    parts.push(part);
    length += part.length;
  }
  const text = parts.join("");
  const payload = { id: 42, text, list: Array.from({ length: 1000 }, (_, i) => i * 1.5) };
  const { received, records } = await roundTrip(JsonCodec, [payload], (args) => ({
    echoed: args.text,
    size: args.text.length,
  }));
  assert.deepEqual(received, [payload]);
  assert.deepEqual(records[0]!.args, payload);
  assert.deepEqual(records[0]!.lastResult, { echoed: text, size: text.length });
  assert.ok(JsonCodec.encode(payload).length > FIVE_MB, "the encoded payload is over 5 MB");
});

Deno.test("MsgPackCodec round-trips a 5 MB Uint8Array payload and result byte for byte", async () => {
  const payload = bytes(FIVE_MB);
  const { received, records } = await roundTrip(
    MsgPackCodec,
    [{ name: "blob.bin", data: payload }, new Uint8Array(0)],
    (args) => args instanceof Uint8Array ? args : args.data.slice().reverse(),
  );
  const [big, empty] = records;
  const sent = received[0] as { data: Uint8Array };
  assert.ok(sent.data instanceof Uint8Array, "the handler gets a Uint8Array");
  assert.deepEqual(sent.data, payload);
  assert.ok((big!.args as { data: unknown }).data instanceof Uint8Array);
  assert.deepEqual(big!.args, { name: "blob.bin", data: payload });
  assert.ok(big!.lastResult instanceof Uint8Array, "the result comes back as a Uint8Array");
  assert.deepEqual(big!.lastResult, payload.slice().reverse());
  assert.deepEqual(received[1], new Uint8Array(0));
  assert.deepEqual(empty!.args, new Uint8Array(0));
  assert.deepEqual(empty!.lastResult, new Uint8Array(0));
});

Deno.test("JsonCodec round-trips JSON nested 500 levels deep through push, a worker and fetchById", async () => {
  const deep = nested(500);
  const { received, records } = await roundTrip(JsonCodec, [deep]);
  assert.deepEqual(received, [deep]);
  assert.deepEqual(records[0]!.args, deep);
  assert.deepEqual(records[0]!.lastResult, deep);
});

Deno.test("MsgPackCodec refuses arguments nested deeper than 100 levels at push, naming the codec, and writes nothing", async () => {
  // @msgpack/msgpack's encoder stops at depth 100 (its maxDepth default).
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<unknown>(tmp.db, "deep").withCodec(MsgPackCodec);
  await assert.rejects(
    storage.push(nested(500)),
    (error: unknown) =>
      error instanceof TypeError &&
      error.message.startsWith(
        "Cannot push task to queue 'deep': the msgpack codec cannot encode its arguments: ",
      ) && /too deep/i.test(error.message),
  );
  assert.equal((await storage.stats()).total, 0);
  // 99 levels (the innermost value makes 100) still round-trip.
  const { records } = await roundTrip(MsgPackCodec, [nested(99)]);
  assert.deepEqual(records[0]!.args, nested(99));
  assert.deepEqual(records[0]!.lastResult, nested(99));
});

Deno.test("Worker kills a task whose result MsgPackCodec cannot encode, with an error naming the codec, and leaves nothing running", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<number>(tmp.db, "deep-result").withCodec(MsgPackCodec);
  const id = await storage.push(1, { maxAttempts: 1 });
  const worker = new WorkerBuilder<number>("deep-worker")
    .backend(storage)
    .handleSignals(false)
    .build(() => nested(500));
  const running = worker.run();
  try {
    const [record] = await storage.waitFor([id], { timeoutMs: 10_000 });
    assert.equal(record!.status, "killed");
    assert.equal(record!.lastError?.name, "TypeError");
    assert.match(
      record!.lastError?.message ?? "",
      /^Cannot store the task's result with the msgpack codec: .*too deep/i,
    );
  } finally {
    await worker.stop();
    await running;
  }
  assert.deepEqual(await storage.stats(), {
    pending: 0,
    queued: 0,
    running: 0,
    done: 0,
    failed: 0,
    killed: 1,
    total: 1,
  });
});

/** Strings SQLite, UTF-8 and both codecs must not alter: no normalization, no trimming. */
const UNICODE = [
  "𝄞 musical symbol (U+1D11E, astral plane)",
  "😀👍🏽👩‍👩‍👧‍👦🏳️‍🌈", // emoji: astral, skin tone modifier, ZWJ sequences
  "e\u0301", // e + combining acute: must stay decomposed (NFD)...
  "\u00e9", // ...and é must stay composed (NFC): no normalization either way
  "a\u0300\u0301\u0302\u0303\u0304\u0305", // a stack of combining marks
  "שלום עולם مرحبا", // right-to-left scripts
  "nul \u0000 inside", // NUL is a character like any other in a payload
  "\ufeffBOM first, \u2028 line and \u2029 paragraph separators",
  "\uffff\ufffe noncharacters",
  "", // the empty string
  "\ufffd replacement character, stored as such", // a worker reads it again as bytes
];

/** Lone surrogates: not valid Unicode text, but valid JavaScript strings. */
const LONE_SURROGATES = ["\ud800", "\udfff", "a\ud800b", "\udc00\ud800 reversed pair"];

Deno.test("JsonCodec and MsgPackCodec round-trip astral, combining, right-to-left and NUL characters exactly", async () => {
  for (const codec of [JsonCodec, MsgPackCodec]) {
    const payload = { strings: UNICODE, [UNICODE[1]!]: UNICODE[0] }; // in keys too
    const { received, records } = await roundTrip(codec, [payload, ...UNICODE]);
    assert.deepEqual(received, [payload, ...UNICODE], codec.name);
    assert.deepEqual(records.map((r) => r.args), [payload, ...UNICODE], codec.name);
    assert.deepEqual(records.map((r) => r.lastResult), [payload, ...UNICODE], codec.name);
    const decomposed = records[3]!.args as string;
    assert.equal(decomposed.length, 2, `${codec.name} keeps e + U+0301 as two code units`);
    assert.notEqual(decomposed, records[4]!.args);
  }
});

Deno.test("JsonCodec round-trips lone surrogates exactly (JSON.stringify escapes them as \\uXXXX)", async () => {
  // Long strings too: the escape does not depend on length.
  const long = `${"x".repeat(1000)}\ud800`;
  const { received, records } = await roundTrip(JsonCodec, [...LONE_SURROGATES, long]);
  assert.deepEqual(received, [...LONE_SURROGATES, long]);
  assert.deepEqual(records.map((r) => r.args), [...LONE_SURROGATES, long]);
  assert.deepEqual(records.map((r) => r.lastResult), [...LONE_SURROGATES, long]);
  assert.equal(new TextDecoder().decode(JsonCodec.encode("\ud800")), '"\\ud800"');
});

Deno.test("MsgPackCodec refuses a lone surrogate at push, naming where it is, and writes nothing", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<unknown>(tmp.db, "q").withCodec(MsgPackCodec);
  const long = `${"x".repeat(1000)}\ud800`; // the encoder would turn this one into U+FFFD
  for (
    const [payload, where] of [
      ["a\ud800b", "the value"],
      [{ list: ["ok", long] }, "the value.list[1]"],
      [{ ["k\udc00"]: 1 }, "a key of the value"],
    ] as const
  ) {
    await assert.rejects(
      () => storage.push(payload),
      (error: Error) =>
        error instanceof TypeError && error.message.includes("msgpack codec cannot encode") &&
        error.message.includes(`MessagePack cannot hold ${where}`) &&
        error.message.includes("lone surrogate"),
      JSON.stringify(where),
    );
  }
  assert.equal((await storage.stats()).total, 0, "nothing was written");
  await storage.push({ fine: "𝄞 e\u0301 \ud83d\ude00" }); // well-formed pairs are fine
  assert.equal((await storage.stats()).total, 1);
});

Deno.test("SqliteStorage keeps unicode queue names and metadata exactly", async () => {
  await using tmp = await tempDatabase();
  const queue = "очередь-🚀-e\u0301";
  const storage = new SqliteStorage<string>(tmp.db, queue);
  const meta = { "ключ 𝄞": "значение 😀", combining: "e\u0301" };
  const id = await storage.push("x", { meta });
  let seen: { queue: string; meta: Record<string, unknown> } | undefined;
  const worker = new WorkerBuilder<string>("unicode-worker")
    .backend(storage)
    .handleSignals(false)
    .build((_, ctx) => {
      seen = { queue: ctx.queue, meta: ctx.meta };
    });
  const running = worker.run();
  try {
    await storage.waitFor([id], { timeoutMs: 10_000 });
  } finally {
    await worker.stop();
    await running;
  }
  assert.deepEqual(seen, { queue, meta });
  const record = await storage.fetchById(id);
  assert.equal(record?.queue, queue);
  assert.deepEqual(record?.meta, meta);
  assert.deepEqual((await storage.listQueues()).map((q) => q.name), [queue]);
});
