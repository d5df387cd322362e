/**
 * A slow reader for pipe tests: waits, then copies standard input to standard output in small
 * reads with a pause after each, so the writer on the other end of the pipe finds it full.
 *
 * ```sh
 * apalis ls q --json | deno run tests/e2e/slow_reader.ts [CHUNK_BYTES] [PAUSE_MS] > out.json
 * ```
 *
 * @module
 */

const chunkBytes = Number(Deno.args[0] ?? 16_384);
const pauseMs = Number(Deno.args[1] ?? 2);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

await sleep(300); // the writer fills the pipe and reaches its end before anything is read
const buffer = new Uint8Array(chunkBytes);
for (;;) {
  const read = await Deno.stdin.read(buffer);
  if (read === null) break;
  let written = 0;
  while (written < read) written += await Deno.stdout.write(buffer.subarray(written, read));
  await sleep(pauseMs);
}
