/**
 * Throughput and latency benchmark of the queue on a SQLite file (default) or, with
 * `--backend postgres`, on PostgreSQL, with the raw ceiling of each throughput figure (SQLite's or
 * PostgreSQL's) measured in the same run.
 *
 * Runs under Deno (`deno task bench`, i.e. `deno run -A bench/bench.ts`) and Bun
 * (`bun run bench/bench.ts`): it uses only `node:` modules, `performance.now()`, `mod.ts` and
 * the store's statements (`lib/store/tasks.ts`); on PostgreSQL also `postgres.ts`, the `postgres`
 * client and PostgreSQL's programs (see "PostgreSQL" below).
 *
 * Scenarios, each on a fresh database file in a temp dir (counts are divided by 10 with
 * `--quick`):
 * 1. `push`: 10,000 awaited `storage.push({ n: i, to: "user@example.com" })`, one by one (every
 *    scenario's tasks carry such a small object);
 * 2. `pushAll_1000`: 50,000 tasks by `pushAll` in calls of 1,000, and `pushAll_one_call`: the same
 *    50,000 in one call; each `Task` is built (`Task.builder(args).build()`) inside the timed
 *    region, as an application builds them;
 * 3. `drain_c1`, `drain_c16`: preloaded no-op tasks (20,000 at concurrency 1, 50,000 at 16)
 *    drained by one worker in this process, from `worker.run()` until the worker exited after
 *    the last ack; `drain_shared_c16` and `drain_shared2_c16` the same 50,000 through one queue,
 *    or two queues with a worker each, of a `SharedSqliteStorage` (ratio to `drain_c16`);
 *    `drain_c16_progress` and `drain_c16_log` the same 50,000 with a handler that calls
 *    `ctx.progress(100)` (or `ctx.log`) once per task (ratio to `drain_c16`: what reporting costs);
 * 4. `drain_procs_1`, `drain_procs_2`, `drain_procs_4`: 50,000 no-op tasks drained by k = 1, 2
 *    and 4 worker processes (concurrency 16 each). The children (this file with the hidden flags
 *    `--drainer <db> --name wN --concurrency 16 --warm-up n --durability d`, spawned with
 *    `node:child_process` under the same runtime) start on an empty queue; once all k are
 *    registered and alive (`storage.listWorkers()`), this process pushes the tasks in one `pushAll`
 *    with `runAt` T = now + a lead time (1 s + 1 ms per 25 tasks). Pushing after the workers are
 *    up, rather than before spawning them, keeps process start-up (up to seconds for four processes
 *    on a small machine) out of the lead time, which then needs to cover the push alone; the
 *    workers hear of the commit, learn when the first task falls due and sleep until T, so they all
 *    start at T (warm: each child first drains 20,000 no-op tasks, 2,000 with `--quick`, on a file
 *    of its own, for every k alike, so that each process's code is compiled before T, as in a
 *    long-running worker process). If the push leaves less than 300 ms before T (the longest a
 *    worker may take to hear of another process's commit) the run is repeated with twice the lead
 *    time. Time runs from T to the last ack: each child reports, every 20 ms, how many tasks it
 *    acked and the wall-clock time of its last `success` event (which follows the ack's commit), so
 *    that this process can wait without querying the file (a `stats()` call costs ~5–20 ms at
 *    50,000 tasks, which polling every few ms would take from the workers on a small machine). Then
 *    each child gets SIGTERM and must exit 0 (a graceful stop, `handleSignals(true)`), the acks
 *    they counted must add up to the task count and `stats()` must show every task done and no
 *    other. `drain_procs_2` and `drain_procs_4` carry their ratio to `drain_procs_1` (`_4` has the
 *    target ≥ 1: more processes must not collapse; `_2` has one process per core of the 2-core
 *    machine, where four share each core by two). The progress output shows each worker's share of
 *    the tasks and its process's CPU time. Beside them, in the same runs,
 *    `ceiling_claim_ack_100_procs_1`, `_procs_2` and `_procs_4`: the raw ceiling's claim 100 + ack
 *    by 1, 2 and 4 processes at once on one preloaded file (this file with the hidden flags
 *    `--ceiling-drainer <db> --name cN`; each warms up on a file of its own, connects, says it is
 *    ready and reads the common start time from stdin; a connection waits for the lock in SQLite's
 *    own busy handler), with the ratios of 2 and 4 to 1: what SQLite itself does with several
 *    writers;
 * 5. `drain_procs_work_1`, `drain_procs_work_4`: the same with 20,000 tasks that each do CPU
 *    work of their own (an FNV-1a hash over 64 KB, ~90 µs here), as real handlers do: where more
 *    processes pay off (no target; the ratio shows how far the queue lets them scale);
 * 6. `latency_p50`, `latency_p99`: enqueue→start latency with an idle worker (200 pushes 10 ms
 *    apart, each stamped with `performance.now()`, which the handler subtracts);
 * 7. `latency_process_p50`, `latency_process_p99`: the same latency when another process pushes
 *    (this file with `--pusher <db> --count n`; it stamps each task with the wall clock and the
 *    parent's worker subtracts it at start; the clock is `performance.timeOrigin +
 *    performance.now()`, i.e. `Date.now()` with sub-ms resolution, which both runtimes derive
 *    from the system clock).
 *
 * Ceilings (`bench/ceiling.ts`: the same runtime, file settings and durability, a minimal queue
 * table, prepared statements and no queue library), with as many rows as the figure they bound:
 * `ceiling_insert_1` (one INSERT per transaction) for `push`, `ceiling_insert_1000` (INSERTs in
 * transactions of 1,000, through the driver's own prepared statement) for both `pushAll` rows, `ceiling_claim_ack_1` and `ceiling_claim_ack_100` (claim
 * a batch of 1 or 100 in one transaction, ack it in another) for `drain_c1` and `drain_c16`. Each
 * queue figure carries `ratio` = figure / ceiling and, where the project has one, its `target`.
 * Beside the `pushAll` rows, `queue_sql_insert_1000` fills the queue's own table the way the
 * ceiling fills its minimal one (raw INSERTs, no library): what the data model costs per row.
 * Beside `drain_c16`, `queue_sql_claim_ack_100` runs the queue's own schema and statements with
 * no worker (ack 100 and claim 100 per transaction, as the worker's flush does): the SQL the data
 * model needs, between the raw ceiling and the worker.
 *
 * PostgreSQL (`--backend postgres`, `pg_bench.ts`): the benchmark starts its own private cluster
 * (`tests/pg_cluster.ts`: initdb into the temp dir, as the `postgres` user when run as root,
 * 127.0.0.1 on a free port) with fsync and synchronous_commit on and the server's other settings
 * at their defaults, makes a fresh database for every scenario and ceiling (dropped after it),
 * and stops the cluster and removes its files at the end. The same rows as on SQLite, through
 * `PostgresStorage` (pool of 10), except the shared storage's (SQLite only); children get the
 * database's URL. Its ceilings (`pg_ceiling.ts`: the `postgres` client, one connection, prepared
 * statements, a minimal queue table, no queue library): `ceiling_insert_1` (one INSERT per
 * transaction, awaited one by one); `ceiling_insert_1000`, the fastest of three ways to write
 * 1,000 rows per transaction, each also reported (`ceiling_insert_1000_values`: one multi-row
 * VALUES statement; `_unnest`: one statement over arrays, as the queue's own INSERT; `_each`:
 * one INSERT per row, pipelined between BEGIN and COMMIT); `ceiling_claim_ack_1` and
 * `ceiling_claim_ack_100` (claim with `FOR UPDATE SKIP LOCKED` in one transaction, ack in
 * another); the claim-100 ceiling by 1, 2 and 4 processes of one connection each. Beside
 * `drain_c16`, `queue_sql_claim_ack_100` runs the backend's own flush (ack 100 + claim 100 in
 * one transaction) with no worker; beside `pushAll`, `queue_sql_insert_1000` fills the queue's
 * own table with the ceiling's `unnest` statement. Latencies from another process carry the
 * issue's limits (`atMost`: p50 5 ms, p99 20 ms); `drain_procs_4` has no target there.
 *
 * Flags: `--backend sqlite|postgres` (default `sqlite`), `--durability normal|full` (SQLite
 * only; default `normal`), `--quick` (counts / 10, a smoke run), `--json` (print JSON instead of
 * a markdown table), `--runs n` (report the median of n runs, each on a fresh database; default
 * 3, or 1 with `--quick`; in each run the figures that are compared are measured one after the
 * other). A warm-up on throwaway databases precedes the measurements (at full size for the
 * `pushAll` rows and their ceiling, smaller for the rest). Progress goes to stderr.
 *
 * @module
 */
import os from "node:os";
import process from "node:process";
import { parseArgs } from "node:util";
import type { Durability } from "../mod.ts";
import { benchCounts, type Counts, medians, progress, PUSH_BATCH, runtimeName } from "./_shared.ts";
import { type BackendName, type BenchReport, type BenchResult, fmt, Results } from "./_report.ts";
import { measureLatencies, measureProcessDrains, measureRateLimited } from "./_rows.ts";
import { type BenchTarget, sqliteTarget } from "./_target.ts";
import {
  ceilingClaimAck,
  ceilingInsertBatch,
  ceilingInsertOne,
  queueSqlClaimAck,
  queueSqlInsert,
} from "./ceiling.ts";
import {
  DRAINER_WARM_UP,
  type DrainerOptions,
  runCeilingDrainer,
  runDrainer,
  runPusher,
} from "./processes.ts";
import { benchDrain, benchDrainShared, benchPush, benchPushAll } from "./scenarios.ts";
import { addReportedDrains } from "./_rows.ts";

export type { BenchReport, BenchResult };

/** Command-line options. */
export interface BenchOptions {
  backend: BackendName;
  /** SQLite's durability (PostgreSQL: `full`, the cluster's fsync and synchronous_commit). */
  durability: Durability;
  quick: boolean;
  json: boolean;
  runs: number;
  /** Internal: run as the pushing child of the cross-process latency on this database. */
  pusher?: { path: string; count: number };
  /** Internal: run as one worker process of the multi-process drain. */
  drainer?: DrainerOptions;
  /** Internal: run as one process of the raw ceiling's multi-process drain. */
  ceilingDrainer?: { path: string; name: string; warmUp: number };
}

function positiveInteger(flag: string, value: string | undefined): number {
  const n = Number(value);
  if (value === undefined || !Number.isSafeInteger(n) || n < 1) {
    throw new RangeError(
      `--${flag} must be an integer >= 1: current value is ${JSON.stringify(value)}`,
    );
  }
  return n;
}

function parse(): BenchOptions {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      backend: { type: "string", default: "sqlite" },
      durability: { type: "string" },
      quick: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      runs: { type: "string" },
      // Hidden: the child processes' modes.
      pusher: { type: "string" },
      count: { type: "string" },
      drainer: { type: "string" },
      "ceiling-drainer": { type: "string" },
      name: { type: "string" },
      concurrency: { type: "string" },
      work: { type: "string" },
      "warm-up": { type: "string" },
    },
    strict: true,
    allowPositionals: false,
  });
  const backend = values.backend;
  if (backend !== "sqlite" && backend !== "postgres") {
    throw new TypeError(
      `--backend must be "sqlite" or "postgres": current value is ${JSON.stringify(backend)}`,
    );
  }
  if (backend === "postgres" && values.durability !== undefined) {
    throw new TypeError(
      "--durability applies to SQLite: the benchmark's PostgreSQL cluster runs with fsync and " +
        "synchronous_commit on",
    );
  }
  const durability = values.durability ?? (backend === "postgres" ? "full" : "normal");
  if (durability !== "normal" && durability !== "full") {
    throw new TypeError(
      `--durability must be "normal" or "full": current value is ${JSON.stringify(durability)}`,
    );
  }
  const quick = values.quick === true;
  // Full runs report the median of 3 by default: the machine is often shared.
  const runs = values.runs === undefined ? (quick ? 1 : 3) : positiveInteger("runs", values.runs);
  const options: BenchOptions = { backend, durability, quick, json: values.json === true, runs };
  if (values.pusher !== undefined) {
    options.pusher = { path: values.pusher, count: positiveInteger("count", values.count) };
  }
  const ceilingDrainer = values["ceiling-drainer"];
  if (values.drainer === undefined && ceilingDrainer === undefined) return options;
  const name = values.name;
  if (name === undefined || name === "") {
    throw new TypeError("--drainer and --ceiling-drainer need --name: the worker's name");
  }
  const warmUp = values["warm-up"] === undefined
    ? DRAINER_WARM_UP
    : positiveInteger("warm-up", values["warm-up"]);
  if (ceilingDrainer !== undefined) {
    options.ceilingDrainer = { path: ceilingDrainer, name, warmUp };
  }
  if (values.drainer !== undefined) {
    options.drainer = {
      path: values.drainer,
      name,
      concurrency: positiveInteger("concurrency", values.concurrency),
      warmUp,
      workKb: values.work === undefined ? 0 : positiveInteger("work", values.work),
    };
  }
  return options;
}

/** Ratio targets on SQLite, by key. */
const TARGETS: Readonly<Record<string, number>> = {
  push: 0.7,
  pushAll_1000: 0.7,
  pushAll_one_call: 0.7,
  drain_c16: 0.5,
  drain_procs_4: 1,
};

/** Runs every scenario and returns the report. */
export async function runBench(
  options: Pick<BenchOptions, "backend" | "durability" | "quick" | "runs">,
): Promise<BenchReport> {
  const { backend, quick, runs } = options;
  const counts = benchCounts(quick);
  const cpus = os.cpus();
  const report = {
    runtime: runtimeName(),
    quick,
    runs,
    machine: {
      cores: cpus.length,
      model: cpus[0]?.model ?? "unknown",
      os: `${os.platform()} ${os.release()}`,
    },
  };
  if (backend === "postgres") {
    // Loaded here only: the SQLite benchmark never loads a PostgreSQL client.
    const { measurePostgres, POSTGRES_LIMITS, POSTGRES_TARGETS } = await import("./pg_bench.ts");
    const { startPostgresBench } = await import("./pg_target.ts");
    const results = new Results(POSTGRES_TARGETS, POSTGRES_LIMITS);
    progress("starting a private PostgreSQL cluster (fsync on)");
    await using pg = await startPostgresBench();
    await measurePostgres(results, pg, counts, runs);
    return {
      backend,
      server: pg.description,
      durability: "full",
      ...report,
      results: results.rows,
    };
  }
  const { durability } = options;
  const results = new Results(TARGETS);
  await measureSqlite(results, sqliteTarget(durability), counts, runs);
  return { backend, durability, ...report, results: results.rows };
}

/** The SQLite rows, each beside its raw SQLite ceiling. */
async function measureSqlite(
  results: Results,
  target: BenchTarget,
  counts: Counts,
  runs: number,
): Promise<void> {
  const { durability } = target;
  const normal = sqliteTarget("normal");
  const addPair = results.addPair.bind(results);

  // Warm the JIT and the statement paths on throwaway files (always "normal": the point is the
  // code, not the disk); not reported. The child processes warm themselves up (runDrainer).
  progress(`warm-up (${runtimeName()})`);
  await benchPush(normal, counts.push / 5);
  await ceilingInsertOne("normal", counts.push / 5);
  // At full size: the first calls that build 50,000 rows also grow the JS heap, which a
  // smaller warm-up leaves to the measured runs (pushAll's first full runs were ~25 % slower).
  await benchPushAll(normal, counts.pushAll, PUSH_BATCH);
  await benchPushAll(normal, counts.pushAll, counts.pushAll);
  await queueSqlInsert("normal", counts.pushAll, PUSH_BATCH);
  await ceilingInsertBatch("normal", counts.pushAll, PUSH_BATCH);
  await benchDrain(normal, counts.drainC1 / 10, 1);
  await ceilingClaimAck("normal", counts.drainC1 / 10, 1);
  await benchDrain(normal, counts.drainC16 / 10, 16);
  await ceilingClaimAck("normal", counts.drainC16 / 10, 100);
  await queueSqlClaimAck("normal", counts.drainC16 / 10, 100);
  progress(`measuring (durability ${durability}, median of ${runs} run${runs > 1 ? "s" : ""})`);

  {
    const [push, ceiling] = await medians(runs, [
      () => benchPush(target, counts.push),
      () => ceilingInsertOne(durability, counts.push),
    ]);
    addPair({
      key: "push",
      scenario: `push one by one (${fmt(counts.push)} awaited, small objects)`,
      value: push!,
    }, {
      key: "ceiling_insert_1",
      scenario: `ceiling: raw INSERT, 1 row per transaction (${fmt(counts.push)})`,
      value: ceiling!,
    }, true);
  }
  {
    const n = counts.pushAll;
    const [batched, oneCall, sql, ceiling] = await medians(runs, [
      () => benchPushAll(target, n, PUSH_BATCH),
      () => benchPushAll(target, n, n),
      () => queueSqlInsert(durability, n, PUSH_BATCH),
      () => ceilingInsertBatch(durability, n, PUSH_BATCH),
    ]);
    const base = {
      key: `ceiling_insert_${PUSH_BATCH}`,
      scenario: `ceiling: raw INSERT, ${fmt(PUSH_BATCH)} rows per transaction (${fmt(n)})`,
      value: ceiling!,
    };
    addPair(
      {
        key: `pushAll_${PUSH_BATCH}`,
        scenario: `pushAll of ${fmt(n)} tasks in calls of ${fmt(PUSH_BATCH)}, built in the timer`,
        value: batched!,
      },
      base,
      false,
    );
    addPair(
      {
        key: "pushAll_one_call",
        scenario: `pushAll of ${fmt(n)} tasks in one call, built in the timer`,
        value: oneCall!,
      },
      base,
      false,
    );
    addPair(
      {
        key: `queue_sql_insert_${PUSH_BATCH}`,
        scenario: `the queue's own table, no library: raw INSERT, ${
          fmt(PUSH_BATCH)
        } rows per transaction`,
        value: sql!,
      },
      base,
      true,
    );
  }
  for (const [concurrency, n, batch] of [[1, counts.drainC1, 1], [16, counts.drainC16, 100]]) {
    // Beside the concurrency-16 drain: the queue's own SQL, and the same drain through a shared
    // storage, measured in the same runs.
    const withSql = concurrency === 16;
    const [drain, ceiling, sql, shared1, shared2, progressed, logged] = await medians(runs, [
      () => benchDrain(target, n!, concurrency!),
      () => ceilingClaimAck(durability, n!, batch!),
      ...(withSql
        ? [
          () => queueSqlClaimAck(durability, n!, batch!),
          () => benchDrainShared(durability, n!, concurrency!, 1),
          () => benchDrainShared(durability, n!, concurrency!, 2),
          () => benchDrain(target, n!, concurrency!, "progress"),
          () => benchDrain(target, n!, concurrency!, "log"),
        ]
        : []),
    ]);
    const base = {
      key: `ceiling_claim_ack_${batch}`,
      scenario: `ceiling: raw claim ${batch} + ack in 2 transactions (${fmt(n!)} rows)`,
      value: ceiling!,
    };
    addPair(
      {
        key: `drain_c${concurrency}`,
        scenario: `drain ${fmt(n!)} no-op tasks, 1 worker, concurrency ${concurrency}`,
        value: drain!,
      },
      base,
      !withSql,
    );
    if (withSql) {
      addPair(
        {
          key: `queue_sql_claim_ack_${batch}`,
          scenario: `the queue's own SQL, no worker: ack ${batch} + claim ${batch} per transaction`,
          value: sql!,
        },
        base,
        true,
      );
      const plain = { key: "drain_c16", scenario: "drain_c16", value: drain! };
      const sharedDrains = [
        { queues: 1, key: "drain_shared_c16", value: shared1! },
        { queues: 2, key: "drain_shared2_c16", value: shared2! },
      ];
      for (const { queues, key, value } of sharedDrains) {
        const label = queues === 1 ? "1 queue" : `${queues} queues, a worker each`;
        addPair(
          {
            key,
            scenario: `drain ${fmt(n!)} no-op tasks, shared storage (${label}), concurrency 16`,
            value,
          },
          plain,
          false,
        );
      }
      addReportedDrains(results, n!, plain, progressed!, logged!);
    }
  }
  await measureProcessDrains(results, target, counts, runs);
  await measureLatencies(results, target, counts, runs);
  await measureRateLimited(results, target, counts, runs);
}

/** Formats the report as a markdown table. */
export function toMarkdown(report: BenchReport): string {
  const postgres = report.backend === "postgres";
  const lines = [
    `Machine: ${report.machine.cores} cores, ${report.machine.model} (${report.machine.os})` +
    (report.runs > 1 ? ` — median of ${report.runs} runs` : "") +
    (report.quick ? " — quick run (counts / 10)" : ""),
    ...(report.server === undefined ? [] : [`Server: ${report.server}`]),
    "",
    "| scenario | result | unit | vs ceiling | runtime | durability |",
    "| --- | ---: | --- | ---: | --- | --- |",
  ];
  const durability = postgres ? "PostgreSQL, fsync on" : report.durability;
  for (const r of report.results) {
    const value = r.unit === "ms" ? r.value.toFixed(2) : r.value.toLocaleString("en");
    const ratio = r.ratio === undefined
      ? (r.atMost === undefined ? "" : `(≤ ${r.atMost} ${r.unit})`)
      : r.ratio.toFixed(2) + (r.target === undefined ? "" : ` (≥ ${r.target.toFixed(2)})`);
    lines.push(
      `| ${r.scenario} | ${value} | ${r.unit} | ${ratio} | ${report.runtime} | ${durability} |`,
    );
  }
  lines.push(
    "",
    postgres
      ? "vs ceiling: the figure divided by its raw PostgreSQL ceiling (the `ceiling:` row below " +
        "it; for the drains by 2 and 4 processes, ceiling included, the 1-process drain of the " +
        "same tasks), target in parentheses; for the latency from another process, the most " +
        "the project aims for."
      : "vs ceiling: the figure divided by its raw SQLite ceiling (the `ceiling:` row below it; for " +
        "the drains by 2 and 4 processes, ceiling included, the 1-process drain of the same " +
        "tasks; for the shared storage, the concurrency-16 drain), target in parentheses.",
  );
  return lines.join("\n");
}

async function main(): Promise<number> {
  let args: BenchOptions;
  try {
    args = parse();
  } catch (error) {
    progress(`bench: ${error instanceof Error ? error.message : String(error)}`);
    progress(
      "usage: bench.ts [--backend sqlite|postgres] [--durability normal|full] [--quick] " +
        "[--json] [--runs n]",
    );
    return 2;
  }
  const child = args.pusher?.path ?? args.drainer?.path ?? args.ceilingDrainer?.path;
  if (child !== undefined) return await runChild(args, child);
  if (args.backend === "postgres") {
    const { POSTGRES_MISSING } = await import("../tests/pg_cluster.ts");
    if (POSTGRES_MISSING !== undefined) {
      progress(`bench: Cannot run the benchmark on PostgreSQL: ${POSTGRES_MISSING}`);
      return 1;
    }
  }
  const report = await runBench(args);
  const text = args.json ? JSON.stringify(report, null, 2) : toMarkdown(report);
  await new Promise<void>((resolve) => process.stdout.write(`${text}\n`, () => resolve()));
  return 0;
}

/**
 * Runs the child process's part that `args` name, on the database at `location` (given by the
 * parent: a file's path, or on PostgreSQL a database's URL, whose server the child also makes its
 * warm-up databases on).
 */
async function runChild(args: BenchOptions, location: string): Promise<number> {
  let target: BenchTarget;
  let done = async () => {};
  if (args.backend === "postgres") {
    const { PostgresServer, postgresTarget } = await import("./pg_target.ts");
    const server = new PostgresServer(location);
    target = postgresTarget(server);
    done = () => server.close();
  } else {
    target = sqliteTarget(args.durability);
  }
  try {
    if (args.pusher) {
      await runPusher(target, location, args.pusher.count);
      return 0;
    }
    if (args.drainer) return await runDrainer(target, args.drainer);
    return await runCeilingDrainer(target, args.ceilingDrainer!);
  } finally {
    await done();
  }
}

if (import.meta.main) process.exit(await main());
