import assert from "node:assert/strict";
import type { BenchReport } from "../bench/bench.ts";
import { type CommandRun, runCommand } from "./_command.ts";

const BENCH = new URL("../bench/bench.ts", import.meta.url);
const ROOT = new URL("../", import.meta.url);

function runBench(...args: string[]): Promise<CommandRun> {
  return runCommand(Deno.execPath(), { args: ["run", "-A", BENCH.href, ...args], cwd: ROOT });
}

Deno.test("bench.ts main() reports a positive number for every scenario when run with --quick --json", async () => {
  const { code, stdout, stderr } = await runBench("--quick", "--json");
  assert.equal(code, 0, `bench exited with ${code}:\n${stderr}`);
  const report = JSON.parse(stdout) as BenchReport;
  assert.equal(report.quick, true);
  assert.equal(report.durability, "normal");
  assert.equal(report.runs, 1);
  assert.match(report.runtime, /^Deno \d/);
  assert.ok(report.machine.cores > 0);
  assert.deepEqual(
    report.results.map((r) => r.key),
    [
      "push",
      "pushAll",
      "drain_c1",
      "drain_c16",
      "latency_p50",
      "latency_p99",
      "latency_process_p50",
      "latency_process_p99",
    ],
  );
  for (const result of report.results) {
    assert.ok(
      Number.isFinite(result.value) && result.value > 0,
      `${result.key} = ${result.value} ${result.unit}`,
    );
  }
});

Deno.test("bench.ts main() exits with code 2 when --durability is neither normal nor full", async () => {
  const { code, stdout, stderr } = await runBench("--quick", "--durability", "fast");
  assert.equal(code, 2);
  assert.equal(stdout, "");
  assert.match(stderr, /--durability must be "normal" or "full"/);
});
