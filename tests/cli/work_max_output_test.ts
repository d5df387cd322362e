/**
 * `apalis work --max-output SIZE`: the cap on what a command prints (`--exec`) or an endpoint
 * answers (`--http`), which is stored as the result. Past it the attempt fails, and no more than
 * the cap is read.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { formatSize, parseSize } from "../../lib/cli/format.ts";
import { tempDatabase, waitUntil } from "../_helpers.ts";
import { fetch, QUEUE, run, statusesOf, storageOf, work } from "./_work.ts";

const MIB = 1024 * 1024;
const CHUNK = new Uint8Array(64 * 1024).fill(0x78); // "xxx…"
const CLI = fileURLToPath(new URL("../../cli.ts", import.meta.url));

/** What a streaming answer sent before it ended or its reader went away. */
interface Stream {
  sent: number;
  cancelled: boolean;
}

/**
 * A body of 64 KiB chunks that goes on until the client stops reading, up to `limit` bytes (a
 * safety stop; the cap under test is far below it). `stream` records what it sent.
 */
function endlessBody(stream: Stream, limit: number): ReadableStream<Uint8Array> {
  return new ReadableStream({
    pull(controller) {
      if (stream.sent >= limit) return controller.close();
      stream.sent += CHUNK.byteLength;
      controller.enqueue(CHUNK);
    },
    cancel() {
      stream.cancelled = true;
    },
  }, { highWaterMark: 0 });
}

Deno.test("workCommand.run() --http fails an attempt whose body passes --max-output, reading no more than the cap", async () => {
  await using temp = await tempDatabase();
  const storage = storageOf(temp);
  const endless: Stream = { sent: 0, cancelled: false };
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => {
      const { kind } = await req.json();
      if (kind === "endless") return new Response(endlessBody(endless, 64 * MIB));
      // Announced by content-length: refused before reading it.
      if (kind === "declared") return new Response(new Uint8Array(4 * MIB).fill(0x78));
      if (kind === "failing") {
        return new Response(endlessBody({ sent: 0, cancelled: false }, 64 * MIB), { status: 502 });
      }
      // Exactly the cap: accepted whole.
      return Response.json("x".repeat(MIB - 2));
    },
  );
  const url = `http://127.0.0.1:${server.addr.port}/hook`;
  const ids = await Promise.all(
    ["endless", "declared", "failing", "exact"].map((kind) =>
      storage.push({ kind }, { maxAttempts: 1 })
    ),
  );
  const [endlessId, declaredId, failingId, exactId] = ids;
  const { code } = await work(
    temp,
    ["--http", url, "--max-output", "1MiB"],
    async () => (await statusesOf(storage, ids)).join() === "killed,killed,killed,done",
  );
  assert.equal(code, 0);
  for (const id of [endlessId!, declaredId!]) {
    const task = await fetch(storage, id);
    assert.equal(task.lastError?.name, "HttpError");
    assert.equal(
      task.lastError?.message,
      `POST ${url} answered 200 OK with a body over the 1 MiB limit (--max-output): not stored`,
    );
    assert.equal(task.lastResult, undefined);
  }
  // The endpoint saw the reader stop: it did not send its 64 MiB, only the cap and what the
  // sockets buffer on the way.
  await waitUntil(() => endless.cancelled, "the endless body to be cancelled");
  assert.ok(endless.sent < 32 * MIB, `${endless.sent} bytes sent`);
  // An error answer keeps only the start of its body.
  const failing = await fetch(storage, failingId!);
  assert.match(failing.lastError!.message, /^POST \S+ answered 502 Bad Gateway: x{4096}…$/);
  assert.equal((await fetch(storage, exactId!)).lastResult, "x".repeat(MIB - 2));
});

Deno.test("workCommand.run() --exec fails an attempt whose stdout passes --max-output, counting bytes", async () => {
  await using temp = await tempDatabase();
  const storage = storageOf(temp);
  // 1024 bytes are 512 two-byte characters: the cap counts bytes, not characters.
  const exact = await storage.push({ n: 512 }, { maxAttempts: 1 });
  const over = await storage.push({ n: 513 }, { maxAttempts: 1 });
  const { code } = await work(
    temp,
    [
      "--exec",
      `n=$(sed 's/[^0-9]//g'); i=0; while [ $i -lt $n ]; do printf 'é'; i=$((i+1)); done`,
      "--max-output",
      "1KiB",
    ],
    async () => (await statusesOf(storage, [exact, over])).join() === "done,killed",
  );
  assert.equal(code, 0);
  assert.equal((await fetch(storage, exact)).lastResult, "é".repeat(512));
  const task = await fetch(storage, over);
  assert.equal(task.lastError?.name, "CommandError");
  assert.equal(
    task.lastError?.message,
    "Command wrote more than 1 KiB to stdout (--max-output): it was killed, nothing stored",
  );
});

Deno.test("apalis work --http caps an endless body at 16 MiB by default: the worker process stays small", async () => {
  await using temp = await tempDatabase();
  const storage = storageOf(temp);
  const endless: Stream = { sent: 0, cancelled: false };
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(endlessBody(endless, 1024 * MIB)),
  );
  const id = await storage.push({}, { maxAttempts: 1 });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      CLI,
      "work",
      QUEUE,
      "--http",
      `http://127.0.0.1:${server.addr.port}/`,
    ],
    env: { APALIS_DB: temp.path },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  let peakKiB: number;
  try {
    await waitUntil(
      async () => (await fetch(storage, id)).status === "killed",
      "the attempt to fail",
      30_000,
    );
    const status = Deno.readTextFileSync(`/proc/${child.pid}/status`);
    peakKiB = Number(/^VmHWM:\s+(\d+) kB$/m.exec(status)![1]);
  } finally {
    child.kill("SIGTERM");
  }
  const { code, stderr } = await output;
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  assert.match(
    (await fetch(storage, id)).lastError!.message,
    /over the 16 MiB limit \(--max-output\)/,
  );
  assert.ok(endless.cancelled, "the worker stopped reading");
  assert.ok(endless.sent < 64 * MIB, `${endless.sent} bytes sent`);
  // A Deno process running the CLI peaks near 100 MiB; holding 1 GiB would need far more.
  assert.ok(peakKiB < 256 * 1024, `peak RSS ${Math.round(peakKiB / 1024)} MiB`);
});

Deno.test("workCommand.run() rejects a bad --max-output with exit 2", async () => {
  await using temp = await tempDatabase();
  const cases: [string, RegExp][] = [
    ["lots", /option '--max-output' must be a size like 65536, 512KiB or 16MiB: got 'lots'/],
    [
      "16MB",
      /option '--max-output' takes 1024-based units \(KiB, MiB, GiB\): got '16MB'; did you mean '16MiB'\?/,
    ],
    ["-1", /option '--max-output' must be a size like/],
    ["0", /option '--max-output' must be at least 1 byte: got '0'/],
    ["1GiB", /option '--max-output' must be at most 256 MiB: got '1GiB'/],
  ];
  for (const [value, message] of cases) {
    for (const runner of [["--exec", "cat"], ["--http", "http://127.0.0.1:1/"]]) {
      const { code, out, err } = await run(temp.path, [
        "work",
        QUEUE,
        ...runner,
        `--max-output=${value}`,
      ]);
      assert.equal(code, 2, `${value}: ${err}`);
      assert.equal(out, "");
      assert.match(err, message);
    }
  }
});

Deno.test("parseSize() reads bytes and 1024-based units; formatSize() writes the largest exact one", () => {
  const cases: [string, number][] = [
    ["65536", 65536],
    ["100B", 100],
    ["512KiB", 512 * 1024],
    ["512k", 512 * 1024],
    ["1.5MiB", 1.5 * MIB],
    ["16M", 16 * MIB],
    ["2gib", 2 * 1024 * MIB],
    [" 3 MiB ", 3 * MIB],
  ];
  for (const [text, bytes] of cases) assert.equal(parseSize(text, "--max-output"), bytes, text);
  assert.equal(formatSize(16 * MIB), "16 MiB");
  assert.equal(formatSize(1.5 * MIB), "1536 KiB");
  assert.equal(formatSize(1000), "1000 bytes");
  assert.equal(formatSize(1), "1 byte");
});
