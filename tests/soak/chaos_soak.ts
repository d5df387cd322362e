/**
 * Soak: the chaos drill of `tests/e2e/chaos_test.ts` at 10× its size (500,000 tasks, about 40
 * kills a minute for 5+ minutes). Run by `deno task soak`; not part of `deno task test` (the
 * file name does not end in `_test.ts`).
 *
 * @module
 */
import { tempDatabase } from "../_helpers.ts";
import { CHAOS_DRILL, describeChaos, runChaos } from "../e2e/_chaos.ts";

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
