import { tempDatabase } from "../_helpers.ts";
import { CHAOS_DRILL, describeChaos, runChaos } from "./chaos.ts";

Deno.test("Worker.run() loses no task and re-runs at most its concurrency plus its claim-ahead per kill when 4 processes drain 50,000 tasks under kill -9 every 1-3 s", async (t) => {
  await using tmp = await tempDatabase();
  const report = await runChaos(tmp, {
    ...CHAOS_DRILL,
    total: 50_000,
    timeoutMs: 300_000,
    minKills: 5,
  });
  await t.step(describeChaos(report), () => {});
});
