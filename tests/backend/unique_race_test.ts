/**
 * Conformance, across processes: unique pushes racing. Four processes (`unique_child.ts`) push
 * the same unique task 1,000 times each, all at once, four pushes in flight per process: exactly
 * one task is inserted, and every push answers its id. Again when an earlier holder of the key
 * no longer blocks (killed), which is where the key changes hands.
 *
 * @module
 */
import assert from "node:assert/strict";
import { backendTest, type TestDatabase } from "./_suite.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const CHILD = new URL("./unique_child.ts", import.meta.url).pathname;
const PROCESSES = 4;
const PUSHES = 1_000;

interface ChildResult {
  inserted: number;
  ids: string[];
}

/** Starts the children, lets them go together once all are ready, and returns what each did. */
async function race(db: TestDatabase, queue: string, extra: string[]): Promise<ChildResult[]> {
  const children = Array.from({ length: PROCESSES }, () =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        CHILD,
        "--location",
        db.location,
        "--queue",
        queue,
        "--count",
        String(PUSHES),
        ...extra,
      ],
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn());
  try {
    const outputs = children.map((child) => {
      const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      const readyLine = (async () => {
        while (!/^ready \d+$/m.test(text)) {
          const { value, done } = await lines.read();
          if (done) throw new Error(`a child exited before it was ready: ${text}`);
          text += value;
        }
      })();
      const rest = readyLine.then(async () => {
        while (true) {
          const { value, done } = await lines.read();
          if (done) return text;
          text += value;
        }
      });
      return { readyLine, rest, stderr: new Response(child.stderr).text() };
    });
    await Promise.all(outputs.map((output) => output.readyLine));
    const go = new TextEncoder().encode("go\n");
    await Promise.all(children.map(async (child) => {
      const writer = child.stdin.getWriter();
      await writer.write(go);
      await writer.close();
    }));
    const results: ChildResult[] = [];
    for (const [i, child] of children.entries()) {
      const status = await child.status;
      const stdout = await outputs[i]!.rest;
      const stderr = await outputs[i]!.stderr;
      assert.equal(status.code, 0, `child ${i} failed: ${stderr}`);
      assert.equal(stderr.trim(), "", `child ${i} printed to stderr`);
      const last = stdout.trim().split("\n").at(-1)!;
      results.push(JSON.parse(last) as ChildResult);
    }
    return results;
  } finally {
    for (const child of children) {
      try {
        child.kill("SIGKILL");
      } catch {
        // It exited already.
      }
      await child.status;
    }
  }
}

backendTest(
  "cross-process: 4 processes pushing the same unique task 1,000 times each at once leave exactly one task",
  async (db) => {
    const queue = "race";
    const results = await race(db, queue, []);
    const storage = db.storage<{ report: string }>(queue);
    const tasks = await storage.listTasks({ queue, pageSize: 100 });
    assert.equal(tasks.length, 1, `${tasks.length} tasks (100 at most listed)`);
    const [task] = tasks;
    assert.deepEqual(task!.args, { report: "daily" });
    assert.equal(
      results.reduce((sum, result) => sum + result.inserted, 0),
      1,
      `inserted per process: ${results.map((result) => result.inserted)}`,
    );
    for (const result of results) assert.deepEqual(result.ids, [task!.id]);
  },
);

backendTest(
  "cross-process: when the key's holder was killed, 4 racing processes insert exactly one new holder",
  async (db) => {
    const queue = "race-killed";
    const storage = db.storage<{ report: string }>(queue);
    const old = await storage.push({ report: "daily" }, { unique: { key: "daily" } });
    await db.admin().kill(old, "superseded");
    const results = await race(db, queue, ["--key", "daily"]);
    const tasks = await storage.listTasks({ queue, pageSize: 100 });
    assert.deepEqual(
      tasks.map((task) => task.status).sort(),
      ["killed", "pending"],
      `${tasks.length} tasks (100 at most listed)`,
    );
    const holder = tasks.find((task) => task.status === "pending")!;
    assert.equal(holder.uniqueKey, "daily");
    assert.equal(results.reduce((sum, result) => sum + result.inserted, 0), 1);
    for (const result of results) assert.deepEqual(result.ids, [holder.id]);
  },
);
