import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";

const WORKER = new URL("./idle_worker_process.ts", import.meta.url).pathname;
const CLOCK_TICKS_PER_SECOND = 100; // Linux USER_HZ
const IDLE_MS = 10_000;

/** User + system CPU time of a process, in milliseconds, from /proc/<pid>/stat. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
  return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
}

Deno.test({
  name: "Worker.run() uses under 1% of one core while idle for 10 s",
  ignore: !existsSync("/proc/self/stat"),
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "apalis_idle_" });
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", WORKER, `${dir}/idle.db`],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    try {
      // Wait for "ready": the worker has registered, fetched once and gone idle.
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let seen = "";
      while (!seen.includes("ready")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the idle worker exited before it was ready: ${seen}`);
        seen += value;
      }
      const before = cpuMs(child.pid);
      await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
      const used = cpuMs(child.pid) - before;
      const share = used / IDLE_MS;
      await t.step(
        `idle CPU: ${used} ms over ${IDLE_MS / 1000} s (${(share * 100).toFixed(2)}% of one core)`,
        () => {},
      );
      assert.ok(share < 0.01, `an idle worker used ${used} ms of CPU in ${IDLE_MS} ms`);
      child.kill("SIGTERM");
      const status = await child.status;
      assert.equal(status.code, 0, "the idle worker shuts down gracefully on SIGTERM");
      reader.releaseLock();
    } finally {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await child.stdout.cancel().catch(() => {});
      await child.stderr.cancel().catch(() => {});
      await child.status.catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
});
