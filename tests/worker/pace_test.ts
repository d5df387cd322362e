import assert from "node:assert/strict";
import { Pace } from "../../lib/worker/pace.ts";

/** A pace that saw `n` tasks finish between 0 and `ms`, asked at `ms`. */
function after(n: number, ms: number, cap = 100, held = 0): number {
  const pace = new Pace(10, 10, 0);
  for (let i = 0; i < n; i++) pace.settled();
  return pace.aheadWanted(cap, held, ms);
}

Deno.test("Pace.aheadWanted() claims nothing ahead before any task finished", () => {
  assert.equal(after(0, 50), 0);
});

Deno.test("Pace.aheadWanted() claims what finishes in the window, at half weight after one sample, up to the cap", () => {
  // 400 tasks in 20 ms: 20 per ms; smoothed from 0 to 10 per ms; 10 ms of that is 100.
  assert.equal(after(400, 20, 1_000), 100);
  assert.equal(after(400, 20, 30), 30, "capped");
});

Deno.test("Pace.aheadWanted() claims nothing ahead for slow tasks (one per 20 ms at two slots)", () => {
  assert.equal(after(10, 100), 0);
});

Deno.test("Pace.aheadWanted() tops up only once half of its target has started", () => {
  assert.equal(after(400, 20, 1_000, 50), 50, "50 missing of 100: half");
  assert.equal(after(400, 20, 1_000, 51), 0, "49 missing: wait");
  assert.equal(after(400, 20, 1_000, 150), 0, "more held than the target");
});

Deno.test("Pace.aheadWanted() keeps its pace between samples shorter than sampleMs, and follows a slowdown", () => {
  const pace = new Pace(10, 10, 0);
  for (let i = 0; i < 400; i++) pace.settled();
  assert.equal(pace.aheadWanted(1_000, 0, 20), 100); // 10 per ms
  assert.equal(pace.aheadWanted(1_000, 0, 25), 100, "5 ms later: no new sample yet");
  // Nothing finished over the next 20 ms: the pace halves.
  assert.equal(pace.aheadWanted(1_000, 0, 45), 50);
});
