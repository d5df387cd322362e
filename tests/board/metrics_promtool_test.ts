/**
 * `promtool check metrics` (from Prometheus; Debian's `prometheus` package) accepts what
 * `renderMetrics` writes: a database with done, failed and killed tasks, a paused queue, and
 * queue names that need escaping.
 *
 * promtool is looked up on PATH (or at `$APALIS_PROMTOOL`). When it is missing the test is
 * ignored, unless `APALIS_PROMTOOL_TEST=required` (CI), where it fails.
 *
 * @module
 */
import assert from "node:assert/strict";
import { renderMetrics } from "../../board.ts";
import { SqliteStorage, Task, WorkerBuilder } from "../../mod.ts";
import { tempDatabase } from "../_helpers.ts";

const PROMTOOL = Deno.env.get("APALIS_PROMTOOL") || "promtool";
const REQUIRED = Deno.env.get("APALIS_PROMTOOL_TEST") === "required";
const HAS_PROMTOOL = await runs(PROMTOOL);
const IGNORE = !HAS_PROMTOOL && !REQUIRED;
const SKIPPED = IGNORE
  ? ` (ignored: no ${PROMTOOL}; apt-get install -y prometheus, or set APALIS_PROMTOOL)`
  : "";

async function runs(command: string): Promise<boolean> {
  try {
    const { success } = await new Deno.Command(command, {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
}

Deno.test({
  name: `promtool check metrics accepts renderMetrics() output${SKIPPED}`,
  ignore: IGNORE,
  async fn() {
    if (!HAS_PROMTOOL) {
      throw new Error(
        `Cannot run the promtool test: '${PROMTOOL}' does not run and APALIS_PROMTOOL_TEST=required (install it with 'apt-get install -y prometheus', or point APALIS_PROMTOOL at one)`,
      );
    }
    await using temp = await tempDatabase();
    const jobs = new SqliteStorage<{ fail: number }>(temp.db, "jobs");
    const weird = new SqliteStorage<{ fail: number }>(temp.db, 'q "quoted" \\ back\nslash');
    const ids = await jobs.pushAll([
      new Task({ fail: 0 }),
      new Task({ fail: 1 }, { maxAttempts: 2 }), // a failed attempt, then done
      new Task({ fail: 9 }, { maxAttempts: 1 }), // killed
    ]);
    const worker = new WorkerBuilder("promtool").backend(jobs).retry({ backoff: () => 0 })
      .handleSignals(false)
      .build((args, ctx) => {
        if (ctx.attempt <= args.fail) throw new Error(`attempt ${ctx.attempt} fails`);
        return "ok";
      });
    await worker.runUntil(jobs.waitFor(ids, { timeoutMs: 10_000 }));
    await weird.push({ fail: 0 }, { runAt: Date.now() - 1234 });
    await SqliteStorage.admin(temp.db).pauseQueue("paused");
    const text = await renderMetrics(temp.db);
    assert.match(text, /^apalis_queue_paused\{queue="paused"\} 1$/m);
    assert.match(text, /^apalis_tasks_succeeded_total\{queue="jobs"\} 2$/m);
    assert.match(
      text,
      /^apalis_tasks\{queue="q \\"quoted\\" \\\\ back\\nslash",state="pending"\} 1$/m,
    );

    const child = new Deno.Command(PROMTOOL, {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(text));
    await writer.close();
    const { code, stdout, stderr } = await child.output();
    const out = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
    assert.equal(code, 0, `promtool refused the text (exit ${code}):\n${out}\n---\n${text}`);
    assert.equal(out.trim(), "", `promtool found problems:\n${out}`);
  },
});
