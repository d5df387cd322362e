import assert from "node:assert/strict";
import {
  bucketWidth,
  rateAllowance,
  rateRecord,
  type RateWindow,
} from "../../lib/store/rate_window.ts";
import { maxInAnyWindow } from "../backend/spans.ts";

Deno.test("rateAllowance() never lets more than `limit` claims into any window of `perMs`, claims arriving at random, a clock sometimes behind", () => {
  let seed = 42;
  const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  for (const [limit, perMs] of [[5, 100], [50, 1_000], [3, 7], [1_000, 1_000]] as const) {
    let window: RateWindow = [];
    let clock = 1_700_000_000_000;
    const claims: number[] = [];
    for (let i = 0; i < 5_000; i++) {
      clock += Math.floor(random() * perMs / 10);
      // Another process's clock, a moment behind this one's.
      const now = clock - (random() < 0.2 ? Math.floor(random() * 5) : 0);
      const wanted = 1 + Math.floor(random() * limit / 2);
      const { live, allowed } = rateAllowance(window, limit, perMs, now);
      const taken = Math.min(wanted, allowed);
      for (let k = 0; k < taken; k++) claims.push(now);
      window = rateRecord(live, perMs, now, taken);
    }
    assert.ok(maxInAnyWindow(claims, perMs) <= limit, `${limit}/${perMs}`);
    assert.equal(maxInAnyWindow(claims, perMs), limit, `${limit}/${perMs} is reached`);
  }
});

Deno.test("rateAllowance() says when the window reopens: one bucket after `perMs` past the oldest counted bucket", () => {
  const perMs = 1_000;
  const width = bucketWidth(perMs);
  assert.equal(width, 5);
  const window = rateRecord([], perMs, 10_002, 3);
  assert.deepEqual(window, [[2_000, 3]]);
  const full = rateAllowance(window, 3, perMs, 10_500);
  assert.equal(full.allowed, 0);
  assert.equal(full.reopensInMs, (2_000 + 1) * width + perMs - 10_500);
  const reopened = (2_000 + 1) * width + perMs;
  const open = rateAllowance(window, 3, perMs, reopened);
  assert.deepEqual(open, { live: [], allowed: 3, reopensInMs: null, at: reopened });
});
