/**
 * Chaos on PostgreSQL at CI size: 10,000 tasks (about 20 s here). The 50,000 run in
 * `tests/soak/chaos_soak.ts` (`deno task soak`). See `tests/backend/pg_chaos.ts`.
 *
 * @module
 */
import { pgTest, tempPostgres } from "../_postgres.ts";
import { describePgChaos, PG_CHAOS_DRILL, runPgChaos } from "../backend/pg_chaos.ts";

pgTest(
  "4 worker processes posing as 4 hosts drain 10,000 tasks on PostgreSQL under kill -9 every 1-3 s and one server restart: every task done, re-runs only of what the killed workers held",
  async (t) => {
    await using db = await tempPostgres();
    const report = await runPgChaos(db, {
      ...PG_CHAOS_DRILL,
      total: 10_000,
      timeoutMs: 300_000,
      minKills: 4,
    });
    await t.step(describePgChaos(report), () => {});
  },
);
