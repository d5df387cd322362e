import assert from "node:assert/strict";
import { type Codec, JsonCodec, SqliteStorage, WorkerBuilder } from "../../mod.ts";
import { runUntilFinished, tempDatabase } from "../_helpers.ts";

/** JSON, noting the size of every value it is asked to decode. */
function measuringJson(): Codec & { decoded: number[] } {
  const decoded: number[] = [];
  return {
    ...JsonCodec,
    name: "measuring-json",
    decoded,
    decode(bytes: Uint8Array) {
      decoded.push(bytes.length);
      return JsonCodec.decode(bytes);
    },
  };
}

Deno.test("SqliteStorage.listTasks({ previewBytes }) decodes values that fit and, for longer ones, gives their size and first bytes without reading them whole", async () => {
  await using temp = await tempDatabase();
  const codec = measuringJson();
  const storage = new SqliteStorage<unknown>(temp.db, "files", { codec });
  const small = await storage.push({ name: "a.txt" });
  const bigArgs = { name: "b.bin", body: "x".repeat(100_000) };
  const big = await storage.push(bigArgs);
  // Two bytes each in UTF-8: 101 bytes end half-way through one.
  const accents = await storage.push(`_${"é".repeat(1000)}`);
  const answered = await storage.push({ name: "c.txt" });
  const worker = new WorkerBuilder("answerer").backend(storage).handleSignals(false)
    .build((args) => {
      const name = (args as { name?: string }).name;
      return name === "c.txt" ? { pages: "y".repeat(50_000) } : "ok";
    });
  await runUntilFinished(worker, storage, [small, big, accents, answered]);
  codec.decoded.length = 0;

  const listed = await storage.listTasks({ queue: "files", previewBytes: 101 });
  const byId = new Map(listed.map((task) => [task.id, task]));
  assert.ok(codec.decoded.every((size) => size <= 101), `decoded ${codec.decoded.join(", ")}`);

  const whole = byId.get(small)!;
  assert.deepEqual(whole.args, { name: "a.txt" });
  assert.equal(whole.lastResult, "ok");
  assert.equal(whole.cut, undefined, "nothing was cut");

  const cut = byId.get(big)!;
  const encoded = JSON.stringify(bigArgs);
  assert.equal(cut.args, undefined);
  assert.deepEqual(cut.cut, { args: { bytes: encoded.length, text: encoded.slice(0, 101) } });
  assert.equal(cut.lastResult, "ok", "a short result is still decoded");
  assert.equal(cut.status, "done");

  const text = byId.get(accents)!.cut!.args!;
  assert.equal(text.bytes, 2003);
  assert.equal(text.text, `"_${"é".repeat(49)}`, "no half character at the end");

  const result = byId.get(answered)!;
  assert.deepEqual(result.args, { name: "c.txt" });
  assert.equal(result.lastResult, undefined);
  assert.equal(result.cut?.lastResult?.bytes, JSON.stringify({ pages: "y".repeat(50_000) }).length);
  assert.equal(result.cut?.lastResult?.text, `{"pages":"${"y".repeat(101 - 10)}`);
  assert.equal(result.cut?.args, undefined);

  // Without previewBytes, and from fetchById, every value is whole.
  const full = await storage.listTasks({ queue: "files" });
  assert.deepEqual(full.find((task) => task.id === big)!.args, bigArgs);
  assert.ok(full.every((task) => task.cut === undefined));
  assert.deepEqual((await storage.fetchById(big))!.args, bigArgs);
  // The same with a status filter and across queues (the other listing paths).
  const done = await storage.listTasks({ status: "done", previewBytes: 101 });
  assert.equal(done.find((task) => task.id === big)!.cut?.args?.bytes, encoded.length);
});

Deno.test("SqliteStorage.listTasks({ previewBytes }) gives no text for a codec that does not write text, and 0 reads sizes only", async () => {
  await using temp = await tempDatabase();
  const bytesCodec: Codec = {
    name: "raw",
    encode: (value) => value as Uint8Array,
    decode: (bytes) => bytes,
  };
  const storage = new SqliteStorage<Uint8Array>(temp.db, "raw", { codec: bytesCodec });
  await storage.push(new Uint8Array(5000).fill(7));
  const [task] = await storage.listTasks({ queue: "raw", previewBytes: 64 });
  assert.equal(task!.args, undefined);
  assert.deepEqual(task!.cut, { args: { bytes: 5000 } });

  const json = new SqliteStorage<string>(temp.db, "json");
  await json.push("hello");
  const [sized] = await json.listTasks({ queue: "json", previewBytes: 0 });
  assert.deepEqual(sized!.cut, { args: { bytes: 7, text: "" } });
});

Deno.test("SqliteStorage.listTasks() throws a RangeError naming previewBytes when it is not an integer >= 0", async () => {
  await using temp = await tempDatabase();
  const storage = new SqliteStorage(temp.db, "q");
  for (const previewBytes of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    await assert.rejects(
      storage.listTasks({ previewBytes }),
      (error: unknown) => error instanceof RangeError && /'previewBytes'/.test(error.message),
      String(previewBytes),
    );
  }
});

Deno.test("SqliteStorage.listTasks({ previewBytes }) counts and cuts bytes also for a value stored as text", async () => {
  await using temp = await tempDatabase();
  const storage = new SqliteStorage<string>(temp.db, "texts");
  const id = await storage.push("ü".repeat(100)); // 202 bytes of JSON, 102 characters
  // Another writer (or an older version) may have stored the payload as TEXT, not as a BLOB.
  temp.db.run("UPDATE apalis_tasks SET args = CAST(args AS TEXT) WHERE id = ?", [id]);
  assert.equal(
    temp.db.get<{ t: string }>("SELECT typeof(args) AS t FROM apalis_tasks WHERE id = ?", [id])?.t,
    "text",
  );
  const [cut] = await storage.listTasks({ queue: "texts", previewBytes: 21 });
  assert.deepEqual(cut!.cut, { args: { bytes: 202, text: `"${"ü".repeat(10)}` } });
  const [whole] = await storage.listTasks({ queue: "texts", previewBytes: 202 });
  assert.equal(whole!.args, "ü".repeat(100));
  assert.equal(whole!.cut, undefined);
});
