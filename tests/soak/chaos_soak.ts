/**
 * Soak: the chaos drills at full size, run by `deno task soak`; not part of `deno task test`
 * (the file name does not end in `_test.ts`).
 *
 * - SQLite: the drill of `tests/e2e/chaos_test.ts` at 10× its size (500,000 tasks, about 40
 *   kills a minute for 5+ minutes).
 * - PostgreSQL: the drill of `tests/postgres/chaos_test.ts` at the size: 4 worker
 *   processes posing as 4 hosts, 50,000 tasks, kill -9 every 1-3 s, one server restart.
 *
 * @module
 */
import { tempDatabase } from "../_helpers.ts";
import { pgTest, tempPostgres } from "../_postgres.ts";
import { CHAOS_DRILL, describeChaos, runChaos } from "../e2e/chaos.ts";
import { describePgChaos, PG_CHAOS_DRILL, runPgChaos } from "../backend/pg_chaos.ts";

Deno.test("Worker.run() loses no task and re-runs at most its concurrency plus its claim-ahead per kill when 4 processes drain 500,000 tasks under kill -9 every 1-3 s", async (t) => {
  await using tmp = await tempDatabase();
  const report = await runChaos(tmp, {
    ...CHAOS_DRILL,
    total: 500_000,
    timeoutMs: 1_800_000,
    minKills: 50,
  });
  await t.step(describeChaos(report), () => {});
});

pgTest(
  "4 worker processes posing as 4 hosts drain 50,000 tasks on PostgreSQL under kill -9 every 1-3 s and one server restart: every task done, re-runs only of what the killed workers held",
  async (t) => {
    await using db = await tempPostgres();
    const report = await runPgChaos(db, {
      ...PG_CHAOS_DRILL,
      total: 50_000,
      timeoutMs: 900_000,
      minKills: 15,
    });
    await t.step(describePgChaos(report), () => {});
  },
);
