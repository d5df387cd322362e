/**
 * The PostgreSQL rows of the benchmark (`bench.ts --backend postgres`), each beside its raw
 * PostgreSQL ceiling (`pg_ceiling.ts`) measured in the same run on the same private cluster.
 *
 * @module
 */
import { type Counts, medians, progress, PUSH_BATCH, runtimeName } from "./_shared.ts";
import { fmt, type Results } from "./_report.ts";
import {
  addReportedDrains,
  measureLatencies,
  measureProcessDrains,
  measureRateLimited,
} from "./_rows.ts";
import {
  INSERT_WAYS,
  type InsertWay,
  pgCeilingClaimAck,
  pgCeilingInsertBatch,
  pgCeilingInsertOne,
  pgQueueSqlClaimAck,
  pgQueueSqlInsert,
} from "./pg_ceiling.ts";
import type { PostgresBench } from "./pg_target.ts";
import { benchDrain, benchPush, benchPushAll } from "./scenarios.ts";

/** Ratio targets on PostgreSQL, by key (issue 20 §5). */
export const POSTGRES_TARGETS: Readonly<Record<string, number>> = {
  push: 0.7,
  pushAll_1000: 0.7,
  pushAll_one_call: 0.7,
  drain_c16: 0.5,
};

/** Latency limits on PostgreSQL, in ms, by key (issue 20 §5). */
export const POSTGRES_LIMITS: Readonly<Record<string, number>> = {
  latency_process_p50: 5,
  latency_process_p99: 20,
};

/** How each way of writing 1,000 rows per transaction is described. */
const WAY_LABELS: Readonly<Record<InsertWay, string>> = {
  values: "one multi-row VALUES statement",
  unnest: "one statement over arrays (unnest)",
  each: "one INSERT per row, pipelined between BEGIN and COMMIT",
};

/** Measures every PostgreSQL row into `results`. */
export async function measurePostgres(
  results: Results,
  bench: PostgresBench,
  counts: Counts,
  runs: number,
): Promise<void> {
  const { server, target } = bench;
  progress(`  ${bench.description}`);

  // Warm the JIT and the client's statement paths on throwaway databases; not reported. The
  // child processes warm themselves up (runDrainer, runCeilingDrainer).
  progress(`warm-up (${runtimeName()})`);
  await benchPush(target, counts.push / 5);
  await pgCeilingInsertOne(server, counts.push / 5);
  // At full size, as on SQLite: the first calls that build 50,000 rows also grow the JS heap.
  await benchPushAll(target, counts.pushAll, PUSH_BATCH);
  await benchPushAll(target, counts.pushAll, counts.pushAll);
  await pgQueueSqlInsert(server, counts.pushAll, PUSH_BATCH);
  for (const way of INSERT_WAYS) {
    await pgCeilingInsertBatch(server, counts.pushAll, PUSH_BATCH, way);
  }
  await benchDrain(target, counts.drainC1 / 10, 1);
  await pgCeilingClaimAck(server, counts.drainC1 / 10, 1);
  await benchDrain(target, counts.drainC16 / 10, 16);
  await pgCeilingClaimAck(server, counts.drainC16 / 10, 100);
  await pgQueueSqlClaimAck(target, counts.drainC16 / 10, 100);
  progress(`measuring (PostgreSQL, fsync on, median of ${runs} run${runs > 1 ? "s" : ""})`);

  {
    const [push, ceiling] = await medians(runs, [
      () => benchPush(target, counts.push),
      () => pgCeilingInsertOne(server, counts.push),
    ]);
    results.addPair({
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
    const [batched, oneCall, sql, ...ways] = await medians(runs, [
      () => benchPushAll(target, n, PUSH_BATCH),
      () => benchPushAll(target, n, n),
      () => pgQueueSqlInsert(server, n, PUSH_BATCH),
      ...INSERT_WAYS.map((way) => () => pgCeilingInsertBatch(server, n, PUSH_BATCH, way)),
    ]);
    // The honest ceiling is the fastest way to write the rows.
    const best = ways.indexOf(Math.max(...ways));
    const base = {
      key: `ceiling_insert_${PUSH_BATCH}`,
      scenario: `ceiling: raw INSERT, ${fmt(PUSH_BATCH)} rows per transaction (${
        fmt(n)
      }), the fastest way: ${WAY_LABELS[INSERT_WAYS[best]!]}`,
      value: ways[best]!,
    };
    results.addPair(
      {
        key: `pushAll_${PUSH_BATCH}`,
        scenario: `pushAll of ${fmt(n)} tasks in calls of ${fmt(PUSH_BATCH)}, built in the timer`,
        value: batched!,
      },
      base,
      false,
    );
    results.addPair(
      {
        key: "pushAll_one_call",
        scenario: `pushAll of ${fmt(n)} tasks in one call, built in the timer`,
        value: oneCall!,
      },
      base,
      false,
    );
    results.addPair(
      {
        key: `queue_sql_insert_${PUSH_BATCH}`,
        scenario: `the queue's own table, no library: raw INSERT over arrays (unnest), ${
          fmt(PUSH_BATCH)
        } rows per transaction`,
        value: sql!,
      },
      base,
      true,
    );
    INSERT_WAYS.forEach((way, i) => {
      results.add({
        key: `ceiling_insert_${PUSH_BATCH}_${way}`,
        scenario: `ceiling, one way: ${WAY_LABELS[way]} (${fmt(n)})`,
        value: ways[i]!,
        unit: "tasks/s",
      });
    });
  }
  for (const [concurrency, n, batch] of [[1, counts.drainC1, 1], [16, counts.drainC16, 100]]) {
    // Beside the concurrency-16 drain: the backend's own flush with no worker.
    const withSql = concurrency === 16;
    const [drain, ceiling, sql, progressed, logged] = await medians(runs, [
      () => benchDrain(target, n!, concurrency!),
      () => pgCeilingClaimAck(server, n!, batch!),
      ...(withSql
        ? [
          () => pgQueueSqlClaimAck(target, n!, batch!),
          () => benchDrain(target, n!, concurrency!, "progress"),
          () => benchDrain(target, n!, concurrency!, "log"),
        ]
        : []),
    ]);
    const base = {
      key: `ceiling_claim_ack_${batch}`,
      scenario: `ceiling: raw claim ${batch} (FOR UPDATE SKIP LOCKED) + ack in 2 transactions (${
        fmt(n!)
      } rows)`,
      value: ceiling!,
    };
    results.addPair(
      {
        key: `drain_c${concurrency}`,
        scenario: `drain ${fmt(n!)} no-op tasks, 1 worker, concurrency ${concurrency}`,
        value: drain!,
      },
      base,
      !withSql,
    );
    if (withSql) {
      results.addPair(
        {
          key: `queue_sql_claim_ack_${batch}`,
          scenario: `the queue's own SQL, no worker: ack ${batch} + claim ${batch} per ` +
            "transaction (the backend's flush)",
          value: sql!,
        },
        base,
        true,
      );
      const plain = { key: "drain_c16", scenario: "drain_c16", value: drain! };
      addReportedDrains(results, n!, plain, progressed!, logged!);
    }
  }
  await measureProcessDrains(results, target, counts, runs);
  await measureLatencies(results, target, counts, runs);
  await measureRateLimited(results, target, counts, runs);
}
