import assert from "node:assert/strict";
import { Config } from "../../mod.ts";

const DAY = 86_400_000;

Deno.test("Config.retention defaults to done 7 days, killed 30 days, a look a minute, 1,000 a batch", () => {
  assert.deepEqual({ ...new Config("q").retention }, {
    doneMs: 7 * DAY,
    killedMs: 30 * DAY,
    everyMs: 60_000,
    batchSize: 1000,
  });
});

Deno.test("Config.setRetention() takes durations, milliseconds and forever, and keeps absent fields", () => {
  const config = new Config("q").setRetention({ done: "12h", every: "30s" });
  assert.deepEqual({ ...config.retention }, {
    doneMs: 12 * 3_600_000,
    killedMs: 30 * DAY,
    everyMs: 30_000,
    batchSize: 1000,
  });
  const changed = config.setRetention({ killed: 5000, batchSize: 500 });
  assert.deepEqual([changed.retention.doneMs, changed.retention.killedMs], [12 * 3_600_000, 5000]);
  assert.equal(changed.retention.batchSize, 500);
  assert.equal(config.retention.killedMs, 30 * DAY, "the original is unchanged");
  for (const forever of ["forever", null, Infinity]) {
    assert.equal(new Config("q").setRetention({ done: forever }).retention.doneMs, null);
  }
  assert.equal(new Config("q").setRetention({ killed: "2w" }).retention.killedMs, 14 * DAY);
  assert.equal(new Config("q").setRetention({ done: 0 }).retention.doneMs, 0);
  assert.equal(config.withQueue("other").retention.doneMs, 12 * 3_600_000, "withQueue keeps it");
});

Deno.test("Config.setRetention() rejects bad values with an error naming the field", () => {
  const cases: [Parameters<Config["setRetention"]>[0], RegExp][] = [
    [{ done: "7" }, /'done' must be a duration like "12h", "7d" or "2w".*current value is "7"/],
    [{ killed: -1 }, /'killed' must be .*current value is -1/],
    [{ done: 1.5 }, /'done' must be .*current value is 1.5/],
    [{ done: "soon" }, /'done' must be .*current value is "soon"/],
    [{ every: 0 }, /'every' must be .* >= 1: current value is 0/],
    [{ every: "forever" }, /'every' must be/],
    [{ batchSize: 0 }, /'batchSize' must be an integer from 1 to 10000: current value is 0/],
    [{ batchSize: 20_000 }, /'batchSize' must be an integer from 1 to 10000/],
  ];
  for (const [options, message] of cases) {
    assert.throws(() => new Config("q").setRetention(options), message, JSON.stringify(options));
  }
  assert.throws(
    () => new Config("q").setRetention(null as unknown as { done: string }),
    /Cannot set retention as its options must be an object/,
  );
});
