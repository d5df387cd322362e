/**
 * Conformance: what the database keeps of payloads and results. JSON and MessagePack values
 * round-trip exactly through push, a worker and the reads; a payload the worker's codec cannot
 * decode is killed with a `DecodeError`; values a codec would silently change are refused at
 * push (nothing written) and as results (the attempt fails).
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Codec, Task, WorkerBuilder } from "../../mod.ts";
import { MsgPackCodec } from "../../msgpack.ts";
import { assertNoneHeld, backendTest } from "./_suite.ts";

/** Text with the characters drivers and encodings get wrong: astral, combining, RTL, NUL. */
const TRICKY_TEXT = "a\u0000b 🦀 é ا\u200f \\ \" ' \n\t end";

backendTest(
  "JsonCodec round-trips arguments and results exactly through push, a worker and the reads",
  async (db) => {
    const storage = db.storage<unknown>("json");
    const values: unknown[] = [
      { text: TRICKY_TEXT, n: -1.5e300, big: Number.MAX_SAFE_INTEGER, list: [null, true, 0, ""] },
      TRICKY_TEXT,
      0,
      null,
      [],
      { nested: { deeper: { deepest: ["x".repeat(100_000)] } } },
    ];
    const ids = await storage.pushAll(values.map((value) => new Task(value)));
    const seen: unknown[] = [];
    const worker = new WorkerBuilder("json-worker").backend(storage).handleSignals(false)
      .build((args) => {
        seen.push(args);
        return { echo: args };
      });
    await worker.runUntil(storage.waitFor(ids, { timeoutMs: 10_000 }));
    const tasks = await storage.waitFor(ids);

    assert.deepEqual(seen, values, "the handler received each value exactly");
    assert.deepEqual(tasks.map((task) => task.args), values);
    assert.deepEqual(tasks.map((task) => task.lastResult), values.map((echo) => ({ echo })));
    const listed = await storage.listTasks({ queue: "json", pageSize: 10 });
    assert.deepEqual(listed.map((task) => task.args).reverse(), values, "listed newest first");
  },
);

backendTest("MsgPackCodec round-trips bytes, dates, NaN and nested values exactly", async (db) => {
  const storage = db.storage<unknown>("msgpack").withCodec(MsgPackCodec);
  const bytes = new Uint8Array(70_000).map((_, i) => (i * 31) % 256);
  const values: unknown[] = [
    bytes,
    { when: new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)), blob: new Uint8Array([0, 255, 0]) },
    NaN,
    -Infinity,
    TRICKY_TEXT,
    [1, [2, [3, { four: 4 }]]],
  ];
  const ids = await storage.pushAll(values.map((value) => new Task(value)));
  const seen: unknown[] = [];
  const worker = new WorkerBuilder("msgpack-worker").backend(storage).handleSignals(false)
    .build((args) => {
      seen.push(args);
      return args instanceof Uint8Array ? args.subarray(0, 10) : [args];
    });
  await worker.runUntil(storage.waitFor(ids, { timeoutMs: 10_000 }));
  const tasks = await storage.waitFor(ids);

  assert.deepEqual(seen, values);
  assert.deepEqual(tasks.map((task) => task.args), values);
  assert.ok(tasks[0]!.args instanceof Uint8Array, "bytes come back as a Uint8Array");
  assert.deepEqual(tasks[0]!.lastResult, bytes.subarray(0, 10));
  assert.deepEqual(tasks.slice(1).map((task) => task.lastResult), values.slice(1).map((v) => [v]));
});

backendTest(
  "Worker kills a task whose payload its codec cannot decode with a DecodeError, and runs the others",
  async (db) => {
    const storage = db.storage<unknown>("decode");
    // Bytes that are not UTF-8 (MessagePack), and UTF-8 text that is not JSON.
    const notUtf8 = await storage.withCodec(MsgPackCodec).push({ packed: true });
    const rawText: Codec = {
      name: "raw-text",
      encode: (value) => new TextEncoder().encode(String(value)),
      decode: (bytes) => new TextDecoder().decode(bytes),
    };
    const notJson = await storage.withCodec(rawText).push("{not json");
    const good = await storage.push({ good: 1 });
    const seen: unknown[] = [];
    const worker = new WorkerBuilder("decoder").backend(storage).handleSignals(false)
      .build((args) => void seen.push(args));
    await worker.runUntil(storage.waitFor([notUtf8, notJson, good], { timeoutMs: 10_000 }));
    const [a, b, c] = await storage.waitFor([notUtf8, notJson, good]);

    for (const task of [a, b]) {
      assert.equal(task?.status, "killed");
      assert.equal(task?.attempts, 1, "no retry can decode it");
      assert.equal(task?.lastError?.name, "DecodeError");
      assert.match(task?.lastError?.message ?? "", /decode.*json codec/i);
      assert.equal(task?.args, undefined);
      assert.match(task?.decodeError ?? "", /json codec/);
    }
    assert.equal(c?.status, "done");
    assert.deepEqual(seen, [{ good: 1 }], "the handler never saw the bad payloads");
    assert.deepEqual(
      (await storage.withCodec(MsgPackCodec).fetchById(notUtf8))?.args,
      { packed: true },
      "the stored bytes are intact: the right codec still reads them",
    );
    await assertNoneHeld(storage, "decode");
  },
);

backendTest(
  "Storage push methods refuse values the codec would silently change, and write nothing",
  async (db) => {
    const json = db.storage<unknown>("refuse");
    const msgpack = json.withCodec(MsgPackCodec);
    const refusals: [string, () => Promise<unknown>, RegExp][] = [
      ["push NaN (JSON)", () => json.push(NaN), /json codec.*JSON cannot hold NaN/],
      ["push Infinity (JSON)", () => json.push(Infinity), /JSON cannot hold Infinity/],
      ["push undefined (JSON)", () => json.push(undefined), /JSON cannot hold undefined/],
      ["push a Map (JSON)", () => json.push(new Map([["a", 1]])), /JSON cannot hold a Map/],
      ["push a Set (MsgPack)", () => msgpack.push(new Set([1])), /MessagePack cannot hold a Set/],
      [
        "push a lone surrogate (MsgPack)",
        () => msgpack.push({ name: "\uD800" }),
        /msgpack codec.*lone surrogate/,
      ],
      [
        "pushAll with one NaN among good values",
        () => json.pushAll([new Task(1), new Task(NaN), new Task(3)]),
        /JSON cannot hold NaN/,
      ],
      ["pushStart of undefined", () => json.pushStart(undefined), /JSON cannot hold undefined/],
    ];
    for (const [what, call, message] of refusals) {
      await assert.rejects(call, (error: unknown) => {
        assert.ok(error instanceof TypeError, `${what}: a TypeError, got ${error}`);
        assert.match(error.message, message, what);
        assert.match(error.message, /queue 'refuse'/, what);
        return true;
      }, what);
    }
    assert.deepEqual((await json.stats()).total, 0, "nothing was written");
    assert.deepEqual(await json.listRuns(), [], "no run was started");
  },
);

backendTest(
  "Worker fails the attempt when the codec cannot store the handler's result",
  async (db) => {
    const storage = db.storage<string>("bad-result");
    const id = await storage.push("x", { maxAttempts: 2 });
    const worker = new WorkerBuilder("bad-result-worker").backend(storage)
      .retry({ backoff: () => 0 }).handleSignals(false)
      .build((_args, ctx) => (ctx.attempt === 1 ? NaN : "fine on attempt 2"));
    await worker.runUntil(storage.waitFor(id, { timeoutMs: 10_000 }));
    const [task] = await storage.waitFor(id);
    assert.equal(task?.status, "done");
    assert.equal(task?.attempts, 2);
    assert.equal(task?.lastResult, "fine on attempt 2");

    const killed = await storage.push("y", { maxAttempts: 1 });
    const worker2 = new WorkerBuilder("bad-result-worker-2").backend(storage).handleSignals(false)
      .build(() => new Set([1]));
    await worker2.runUntil(storage.waitFor(killed, { timeoutMs: 10_000 }));
    const [record] = await storage.waitFor(killed);
    assert.equal(record?.status, "killed");
    assert.equal(record?.lastError?.name, "TypeError");
    assert.match(
      record?.lastError?.message ?? "",
      /Cannot store the task's result with the json codec/,
    );
    assert.equal(record?.lastResult, undefined);
  },
);
