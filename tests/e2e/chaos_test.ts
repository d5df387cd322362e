import { tempDatabase } from "../_helpers.ts";
import { describeChaos, runChaos } from "./_chaos.ts";

Deno.test("Worker.run() loses no task and re-runs at most its concurrency per kill when 4 processes drain 50,000 tasks under kill -9 every 1-3 s", async (t) => {
  await using tmp = await tempDatabase();
  const report = await runChaos(tmp, {
    total: 50_000,
    workers: 4,
    concurrency: 8,
    // 4 × 8 handlers of ≥ 20 ms: at most 1,600 tasks/s, so the drain spans ≥ 31 s of kills.
    sleepMs: 20,
    killEveryMs: [1_000, 3_000],
    keepAliveMs: 500,
    orphanAfterMs: 30_000,
    timeoutMs: 300_000,
    minKills: 5,
  });
  await t.step(describeChaos(report), () => {});
});
