import assert from "node:assert/strict";
import type { BenchReport } from "../bench/bench.ts";
import { type CommandRun, runCommand } from "./_command.ts";
import { pgTest } from "./_postgres.ts";

const BENCH = new URL("../bench/bench.ts", import.meta.url);
const ROOT = new URL("../", import.meta.url);

/** Runs the benchmark with its temp files (and so its children's database paths) under `tmp`. */
function runBench(tmp: string, ...args: string[]): Promise<CommandRun> {
  return runCommand(Deno.execPath(), {
    args: ["run", "-A", BENCH.href, ...args],
    cwd: ROOT,
    env: { TMPDIR: tmp },
  });
}

/** A compared figure: the row it is compared to, and its ratio target if it has one. */
type Compared = Record<string, { ceiling: string; target?: number }>;

/** Each compared figure of the SQLite run. */
const SQLITE_COMPARED: Compared = {
  push: { ceiling: "ceiling_insert_1", target: 0.7 },
  pushAll_1000: { ceiling: "ceiling_insert_1000", target: 0.7 },
  pushAll_one_call: { ceiling: "ceiling_insert_1000", target: 0.7 },
  queue_sql_insert_1000: { ceiling: "ceiling_insert_1000" },
  drain_c1: { ceiling: "ceiling_claim_ack_1" },
  drain_c16: { ceiling: "ceiling_claim_ack_100", target: 0.5 },
  queue_sql_claim_ack_100: { ceiling: "ceiling_claim_ack_100" },
  drain_shared_c16: { ceiling: "drain_c16" },
  drain_shared2_c16: { ceiling: "drain_c16" },
  drain_c16_progress: { ceiling: "drain_c16" },
  drain_c16_log: { ceiling: "drain_c16" },
  drain_procs_2: { ceiling: "drain_procs_1" },
  drain_procs_4: { ceiling: "drain_procs_1", target: 1 },
  ceiling_claim_ack_100_procs_2: { ceiling: "ceiling_claim_ack_100_procs_1" },
  ceiling_claim_ack_100_procs_4: { ceiling: "ceiling_claim_ack_100_procs_1" },
  drain_procs_work_4: { ceiling: "drain_procs_work_1" },
};

/** Each compared figure of the PostgreSQL run: the same, without the SQLite-only rows. */
const POSTGRES_COMPARED: Compared = {
  push: { ceiling: "ceiling_insert_1", target: 0.7 },
  pushAll_1000: { ceiling: "ceiling_insert_1000", target: 0.7 },
  pushAll_one_call: { ceiling: "ceiling_insert_1000", target: 0.7 },
  queue_sql_insert_1000: { ceiling: "ceiling_insert_1000" },
  drain_c1: { ceiling: "ceiling_claim_ack_1" },
  drain_c16: { ceiling: "ceiling_claim_ack_100", target: 0.5 },
  queue_sql_claim_ack_100: { ceiling: "ceiling_claim_ack_100" },
  drain_c16_progress: { ceiling: "drain_c16" },
  drain_c16_log: { ceiling: "drain_c16" },
  drain_procs_2: { ceiling: "drain_procs_1" },
  drain_procs_4: { ceiling: "drain_procs_1" },
  ceiling_claim_ack_100_procs_2: { ceiling: "ceiling_claim_ack_100_procs_1" },
  ceiling_claim_ack_100_procs_4: { ceiling: "ceiling_claim_ack_100_procs_1" },
  drain_procs_work_4: { ceiling: "drain_procs_work_1" },
};

/** Checks every row's value, and each compared row's ceiling, target and ratio. */
function checkRows(report: BenchReport, compared: Compared): Map<string, number> {
  const byKey = new Map(report.results.map((r) => [r.key, r]));
  for (const result of report.results) {
    assert.ok(
      Number.isFinite(result.value) && result.value > 0,
      `${result.key} = ${result.value} ${result.unit}`,
    );
    const expected = compared[result.key];
    if (expected === undefined) {
      assert.equal(result.ceiling, undefined, `${result.key} has no ceiling`);
      assert.equal(result.ratio, undefined, `${result.key} has no ratio`);
      assert.equal(result.target, undefined, `${result.key} has no target`);
      continue;
    }
    assert.equal(result.ceiling, expected.ceiling, `${result.key}'s ceiling`);
    assert.equal(result.target, expected.target, `${result.key}'s target`);
    const base = byKey.get(expected.ceiling)!;
    assert.ok(
      result.ratio !== undefined &&
        Math.abs(result.ratio - result.value / base.value) <= 0.005 + 1e-9,
      `${result.key}'s ratio ${result.ratio} is ${result.value} / ${base.value}`,
    );
  }
  return new Map(report.results.map((r) => [r.key, r.value]));
}

/** Throws if a process has `tmp` on its command line or a file is left in `tmp`. */
async function assertNothingLeft(tmp: string): Promise<void> {
  // Every child (pusher, drainers, ceiling drainers, the PostgreSQL server) got its database
  // path under tmp on its command line.
  const ps = await runCommand("ps", { args: ["-eo", "pid=,args="] });
  assert.equal(ps.code, 0, ps.stderr);
  const stray = ps.stdout.split("\n").filter((line) => line.includes(tmp));
  assert.deepEqual(stray, [], "processes the benchmark left running");
  const left = await Array.fromAsync(Deno.readDir(tmp), (entry) => entry.name);
  assert.deepEqual(left, [], "files the benchmark left in its temp dir");
}

Deno.test("bench.ts main() reports a positive number and ratio for every scenario and leaves no process behind when run with --quick --json", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "apalis_bench_smoke_" });
  try {
    const { code, stdout, stderr } = await runBench(tmp, "--quick", "--json");
    assert.equal(code, 0, `bench exited with ${code}:\n${stderr}`);
    const report = JSON.parse(stdout) as BenchReport;
    assert.equal(report.backend, "sqlite");
    assert.equal(report.quick, true);
    assert.equal(report.durability, "normal");
    assert.equal(report.runs, 1);
    assert.match(report.runtime, /^Deno \d/);
    assert.ok(report.machine.cores > 0);
    assert.deepEqual(
      report.results.map((r) => r.key),
      [
        "push",
        "ceiling_insert_1",
        "pushAll_1000",
        "pushAll_one_call",
        "queue_sql_insert_1000",
        "ceiling_insert_1000",
        "drain_c1",
        "ceiling_claim_ack_1",
        "drain_c16",
        "queue_sql_claim_ack_100",
        "ceiling_claim_ack_100",
        "drain_shared_c16",
        "drain_shared2_c16",
        "drain_c16_progress",
        "drain_c16_log",
        "drain_procs_1",
        "drain_procs_2",
        "drain_procs_4",
        "ceiling_claim_ack_100_procs_1",
        "ceiling_claim_ack_100_procs_2",
        "ceiling_claim_ack_100_procs_4",
        "drain_procs_work_1",
        "drain_procs_work_4",
        "latency_p50",
        "latency_p99",
        "latency_process_p50",
        "latency_process_p99",
        "drain_rate_1000",
      ],
    );
    checkRows(report, SQLITE_COMPARED);
    assert.ok(report.results.every((r) => r.atMost === undefined), "no SQLite row has a limit");
    await assertNothingLeft(tmp);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

pgTest(
  "bench.ts main() with --backend postgres starts its own cluster, reports every PostgreSQL row beside its raw ceiling and leaves no process or file behind (--quick --json)",
  async () => {
    const tmp = await Deno.makeTempDir({ prefix: "apalis_bench_smoke_" });
    try {
      // The cluster's dir goes under tmp; its server runs as `postgres` when the tests run as root.
      await Deno.chmod(tmp, 0o755);
      const { code, stdout, stderr } = await runBench(
        tmp,
        "--backend",
        "postgres",
        "--quick",
        "--json",
      );
      assert.equal(code, 0, `bench exited with ${code}:\n${stderr}`);
      const report = JSON.parse(stdout) as BenchReport;
      assert.equal(report.backend, "postgres");
      assert.match(report.server ?? "", /^PostgreSQL \d+\.\d+.*fsync on/);
      assert.equal(report.quick, true);
      assert.equal(report.durability, "full");
      assert.equal(report.runs, 1);
      assert.deepEqual(
        report.results.map((r) => r.key),
        [
          "push",
          "ceiling_insert_1",
          "pushAll_1000",
          "pushAll_one_call",
          "queue_sql_insert_1000",
          "ceiling_insert_1000",
          "ceiling_insert_1000_values",
          "ceiling_insert_1000_unnest",
          "ceiling_insert_1000_each",
          "drain_c1",
          "ceiling_claim_ack_1",
          "drain_c16",
          "queue_sql_claim_ack_100",
          "ceiling_claim_ack_100",
          "drain_c16_progress",
          "drain_c16_log",
          "drain_procs_1",
          "drain_procs_2",
          "drain_procs_4",
          "ceiling_claim_ack_100_procs_1",
          "ceiling_claim_ack_100_procs_2",
          "ceiling_claim_ack_100_procs_4",
          "drain_procs_work_1",
          "drain_procs_work_4",
          "latency_p50",
          "latency_p99",
          "latency_process_p50",
          "latency_process_p99",
          "drain_rate_1000",
        ],
      );
      const values = checkRows(report, POSTGRES_COMPARED);
      // The 1,000-row ceiling is the fastest of the three ways to insert them.
      assert.equal(
        values.get("ceiling_insert_1000"),
        Math.max(
          values.get("ceiling_insert_1000_values")!,
          values.get("ceiling_insert_1000_unnest")!,
          values.get("ceiling_insert_1000_each")!,
        ),
      );
      const limits = report.results.filter((r) => r.atMost !== undefined);
      assert.deepEqual(
        limits.map((r) => [r.key, r.unit, r.atMost]),
        [["latency_process_p50", "ms", 5], ["latency_process_p99", "ms", 20]],
      );
      await assertNothingLeft(tmp);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
);

Deno.test("bench.ts main() exits with code 2 when --durability is neither normal nor full", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "apalis_bench_smoke_" });
  try {
    const { code, stdout, stderr } = await runBench(tmp, "--quick", "--durability", "fast");
    assert.equal(code, 2);
    assert.equal(stdout, "");
    assert.match(stderr, /--durability must be "normal" or "full"/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("bench.ts main() exits with code 2 when --backend is neither sqlite nor postgres, or --durability comes with postgres", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "apalis_bench_smoke_" });
  try {
    const unknown = await runBench(tmp, "--quick", "--backend", "mysql");
    assert.equal(unknown.code, 2);
    assert.equal(unknown.stdout, "");
    assert.match(
      unknown.stderr,
      /--backend must be "sqlite" or "postgres": current value is "mysql"/,
    );
    const durability = await runBench(tmp, "--backend", "postgres", "--durability", "normal");
    assert.equal(durability.code, 2);
    assert.equal(durability.stdout, "");
    assert.match(durability.stderr, /--durability applies to SQLite/);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(tmp)), [], "no cluster was started");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("bench.ts main() exits with code 1 and one line naming the cause when --backend postgres finds no PostgreSQL", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "apalis_bench_smoke_" });
  try {
    const { code, stdout, stderr } = await runCommand(Deno.execPath(), {
      args: ["run", "-A", BENCH.href, "--backend", "postgres", "--quick"],
      cwd: ROOT,
      env: { TMPDIR: tmp, APALIS_POSTGRES_BIN: `${tmp}/no-such-dir` },
    });
    assert.equal(code, 1);
    assert.equal(stdout, "");
    assert.equal(
      stderr,
      `bench: Cannot run the benchmark on PostgreSQL: APALIS_POSTGRES_BIN (${tmp}/no-such-dir) has no initdb\n`,
    );
    assert.deepEqual(await Array.fromAsync(Deno.readDir(tmp)), [], "no cluster was started");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
