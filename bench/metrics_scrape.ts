// deno-lint-ignore-file no-console
/**
 * What one scrape of `/metrics` costs on a queue of a million tasks: `renderMetrics` timed on a
 * temp database filled by SQL (80 % done, 14 % due, 2 % scheduled, 2 % failed, 1 % killed, 1 %
 * running, over 7 days; a week of per-minute outcome counts; 3 small queues; 8 workers), and
 * each of its reads on its own. Not a test: it prints a table.
 *
 * Usage: deno run -A bench/metrics_scrape.ts [--tasks 1000000] [--scrapes 10]
 *          [--backend sqlite|postgres|both]
 *
 * PostgreSQL runs on a private cluster (tests/pg_cluster.ts), analyzed after the load as
 * autovacuum would; SQLite is not analyzed (the library never runs ANALYZE).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type Admin, openDatabase, SqliteStorage } from "../mod.ts";
import { DURATION_BOUNDS_MS, METRICS_SAMPLE, renderMetrics } from "../board.ts";
import { connectPostgres, PostgresStorage } from "../postgres.ts";
import { Cluster, POSTGRES_MISSING } from "../tests/pg_cluster.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    tasks: { type: "string", default: "1000000" },
    scrapes: { type: "string", default: "10" },
    backend: { type: "string", default: "both" },
  },
});
const TASKS = Number(values.tasks);
const SCRAPES = Number(values.scrapes);
if (!Number.isSafeInteger(TASKS) || TASKS < 100 || !Number.isSafeInteger(SCRAPES) || SCRAPES < 1) {
  throw new RangeError("--tasks must be an integer >= 100 and --scrapes >= 1");
}
const NOW = Date.now();
const WEEK = 7 * 24 * 3_600_000;
const START = NOW - WEEK;
const STEP = Math.floor(WEEK / TASKS); // ms between pushes

/** How each task's columns follow from its number `i` (SQL over a column `i`). */
function taskColumns(greatest: "max" | "greatest") {
  const state = "(i % 100)";
  const created = `(${START} + i * ${STEP})`;
  return {
    status: `CASE WHEN ${state} < 80 THEN 'done' WHEN ${state} < 94 THEN 'pending'
      WHEN ${state} < 96 THEN 'failed' WHEN ${state} < 97 THEN 'killed'
      WHEN ${state} < 98 THEN 'running' ELSE 'pending' END`,
    runAt: `CASE WHEN ${state} >= 98 THEN ${NOW} + i ELSE ${created} END`,
    created,
    lockBy: `CASE WHEN ${state} = 97 THEN 'worker-' || (i % 8) END`,
    lockAt:
      `CASE WHEN ${state} < 98 AND (${state} < 80 OR ${state} >= 94) THEN ${created} + i % 5000 END`,
    doneAt:
      `CASE WHEN ${state} < 80 OR ${state} IN (94, 95, 96) THEN ${greatest}(${created} + i % 5000 + i % 700, 0) END`,
  };
}

interface Timing {
  name: string;
  ms: number[];
}

async function timeIt(name: string, fn: () => Promise<unknown>, timings: Timing[]): Promise<void> {
  await fn(); // warm
  const ms: number[] = [];
  for (let i = 0; i < SCRAPES; i++) {
    const start = performance.now();
    await fn();
    ms.push(performance.now() - start);
  }
  timings.push({ name, ms });
}

async function measure(admin: Admin): Promise<Timing[]> {
  const timings: Timing[] = [];
  const backend = admin.backend;
  await timeIt("renderMetrics (the whole scrape)", () => renderMetrics(admin), timings);
  await timeIt(
    "  taskCounts (every task, by queue and state)",
    () => backend.taskCounts(),
    timings,
  );
  await timeIt("  taskOldestDue", () => backend.taskOldestDue(NOW), timings);
  await timeIt("  workerList", () => backend.workerList(undefined, 300_000, NOW), timings);
  await timeIt("  queueSettingsList", () => backend.queueSettingsList(), timings);
  await timeIt("  outcomeTotals (a week of minutes)", () => backend.outcomeTotals(), timings);
  await timeIt(
    `  taskDurations (${METRICS_SAMPLE} newest done per queue)`,
    () =>
      backend.taskDurations(
        ["bench", "small-0", "small-1", "small-2"],
        METRICS_SAMPLE,
        DURATION_BOUNDS_MS,
      ),
    timings,
  );
  return timings;
}

function report(title: string, timings: Timing[], text: string): void {
  console.log(
    `\n${title}: ${
      TASKS.toLocaleString("en")
    } tasks, ${SCRAPES} scrapes, ${text.length} bytes of text`,
  );
  console.log("| read | median ms | min ms | max ms |");
  console.log("| ---- | --------: | -----: | -----: |");
  for (const { name, ms } of timings) {
    const sorted = [...ms].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    console.log(
      `| ${name} | ${median.toFixed(1)} | ${sorted[0]!.toFixed(1)} | ${
        sorted.at(-1)!.toFixed(1)
      } |`,
    );
  }
}

async function sqlite(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "apalis_metrics_bench_" });
  try {
    const db = openDatabase(`${dir}/queue.db`);
    SqliteStorage.setup(db);
    const c = taskColumns("max");
    const load = performance.now();
    db.transaction(() => {
      db.exec(`
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${TASKS})
        INSERT INTO apalis_tasks (id, queue, status, args, attempts, max_attempts, priority,
          run_at, created_at, lock_by, lock_at, done_at)
        SELECT printf('%026d', i), 'bench', ${c.status}, x'7b7d', 1, 5, 0, ${c.runAt},
          ${c.created}, ${c.lockBy}, ${c.lockAt}, ${c.doneAt} FROM n`);
      for (let q = 0; q < 3; q++) {
        db.exec(`
          WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
          INSERT INTO apalis_tasks (id, queue, status, args, attempts, max_attempts, priority,
            run_at, created_at, lock_by, lock_at, done_at)
          SELECT printf('s${q}%024d', i), 'small-${q}', ${c.status}, x'7b7d', 1, 5, 0, ${c.runAt},
            ${c.created}, ${c.lockBy}, ${c.lockAt}, ${c.doneAt} FROM n`);
      }
      db.exec(`
        WITH RECURSIVE m(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM m WHERE k < 10079)
        INSERT INTO apalis_throughput (queue, minute, done, failed, killed)
        SELECT 'bench', ${START - (START % 60_000)} + k * 60000, 79, 2, 1 FROM m`);
      for (let w = 0; w < 8; w++) {
        db.run(
          `INSERT INTO apalis_workers (name, queue, instance_id, host, pid, started_at, last_seen,
             concurrency) VALUES (?, 'bench', ?, 'bench-host', 1, ?, ?, 16)`,
          [`worker-${w}`, `i${w}`, NOW, NOW],
        );
      }
    });
    console.log(`SQLite: loaded in ${((performance.now() - load) / 1000).toFixed(1)} s`);
    const admin = SqliteStorage.admin(db, { clock: { now: () => NOW } });
    const timings = await measure(admin);
    report("SQLite (a file in the temp dir, not analyzed)", timings, await renderMetrics(admin));
    db.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function postgres(): Promise<void> {
  if (POSTGRES_MISSING !== undefined) {
    console.log(`PostgreSQL: skipped (${POSTGRES_MISSING})`);
    return;
  }
  const cluster = await Cluster.start({ durable: true });
  try {
    const pg = await connectPostgres(cluster.url());
    try {
      await PostgresStorage.setup(pg);
      const c = taskColumns("greatest");
      const load = performance.now();
      await pg.sql.unsafe(`
        INSERT INTO apalis_tasks (id, queue, status, args, attempts, max_attempts, priority,
          run_at, created_at, lock_by, lock_at, done_at)
        SELECT lpad(i::text, 26, '0'), 'bench', ${c.status}, '\\x7b7d'::bytea, 1, 5, 0,
          ${c.runAt}, ${c.created}, ${c.lockBy}, ${c.lockAt}, ${c.doneAt}
        FROM generate_series(1::bigint, ${TASKS}::bigint) AS i`);
      for (let q = 0; q < 3; q++) {
        await pg.sql.unsafe(`
          INSERT INTO apalis_tasks (id, queue, status, args, attempts, max_attempts, priority,
            run_at, created_at, lock_by, lock_at, done_at)
          SELECT 's${q}' || lpad(i::text, 24, '0'), 'small-${q}', ${c.status}, '\\x7b7d'::bytea,
            1, 5, 0, ${c.runAt}, ${c.created}, ${c.lockBy}, ${c.lockAt}, ${c.doneAt}
          FROM generate_series(1::bigint, 1000::bigint) AS i`);
      }
      await pg.sql.unsafe(`
        INSERT INTO apalis_throughput (queue, minute, shard, done, failed, killed)
        SELECT 'bench', ${START - (START % 60_000)} + k * 60000, s, 5, 1, 1
        FROM generate_series(0, 10079) AS k, generate_series(0, 15) AS s`);
      await pg.sql.unsafe(`
        INSERT INTO apalis_workers (name, queue, instance_id, host, pid, started_at, last_seen,
          concurrency)
        SELECT 'worker-' || w, 'bench', 'i' || w, 'bench-host', 1, ${NOW}, ${NOW}, 16
        FROM generate_series(0, 7) AS w`);
      await pg.sql.unsafe("VACUUM ANALYZE");
      console.log(`PostgreSQL: loaded in ${((performance.now() - load) / 1000).toFixed(1)} s`);
      const admin = PostgresStorage.admin(pg, { clock: { now: () => NOW } });
      const timings = await measure(admin);
      const [row] = await pg.sql<{ server_version: string }[]>`SHOW server_version`;
      report(
        `PostgreSQL ${row?.server_version} (private cluster, analyzed)`,
        timings,
        await renderMetrics(admin),
      );
    } finally {
      await pg.close();
    }
  } finally {
    cluster.destroySync();
  }
}

if (values.backend === "sqlite" || values.backend === "both") await sqlite();
if (values.backend === "postgres" || values.backend === "both") await postgres();
