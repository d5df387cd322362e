/**
 * `apalis work --exec` logs the command's stderr lines as they come (`apalis logs`), on both
 * backends, and still keeps the end of stderr in the error.
 *
 * @module
 */
import assert from "node:assert/strict";
import { captureIo, main } from "../../lib/cli/mod.ts";
import { LineSplitter } from "../../lib/cli/runners/lines.ts";
import { MAX_LOG_LINE_BYTES } from "../../mod.ts";
import { backendTest, waitUntil } from "./_suite.ts";

const PATH = Deno.env.get("PATH");

backendTest(
  "work --exec: each stderr line is logged as it comes; a last line without newline at exit",
  async (db) => {
    const dir = await Deno.makeTempDir({ prefix: "apalis_exec_logs_" });
    const go = `${dir}/go`;
    const storage = db.storage("exec");
    const id = await storage.push({ n: 1 }, { maxAttempts: 1 });
    const io = captureIo({ env: { APALIS_DB: db.location, PATH } });
    const command = `printf 'one\\ntwo\\r\\n' >&2; while [ ! -f '${go}' ]; do sleep 0.02; done; ` +
      `printf 'three (no newline)' >&2; exit 3`;
    const working = main(["work", "exec", "--exec", command], io);
    try {
      // The command still runs: its first lines are already stored.
      await waitUntil(async () => (await storage.logs(id)).length === 2, "the first two lines");
      assert.equal((await storage.fetchById(id))?.status, "running");
      await Deno.writeTextFile(go, "");
      await waitUntil(async () => (await storage.fetchById(id))?.status === "killed", "killed");
    } finally {
      io.interrupt();
      assert.equal(await working, 0, io.err);
      await Deno.remove(dir, { recursive: true });
    }
    assert.deepEqual((await storage.logs(id)).map((line) => line.line), [
      "one",
      "two",
      "three (no newline)",
    ]);
    const task = await storage.fetchById(id);
    assert.equal(
      task?.lastError?.message,
      "Command exited with code 3: one\ntwo\r\nthree (no newline)",
    );
  },
);

Deno.test("LineSplitter: lines across chunks, CRLF, a last partial line, an endless line cut once", () => {
  const lines: string[] = [];
  const split = new LineSplitter((line) => lines.push(line));
  split.push("a");
  split.push("b\nc\r\n\nd");
  split.push("e");
  split.end();
  assert.deepEqual(lines, ["ab", "c", "", "de"]);

  lines.length = 0;
  split.push("x".repeat(MAX_LOG_LINE_BYTES + 10));
  split.push("y".repeat(10_000));
  split.push("z\nnext\n");
  split.end();
  assert.deepEqual(lines.map((line) => line.slice(0, 4) + line.length), [
    `xxxx${MAX_LOG_LINE_BYTES + 10}`,
    "next4",
  ]);
});
