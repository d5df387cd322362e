import assert from "node:assert/strict";
import { CostlyReads } from "../../lib/board/costly_reads.ts";
import { FakeClock } from "../_helpers.ts";

/** A read that takes `costMs` on `clock` and returns how many times it ran. */
function counter(clock: FakeClock, costMs: number) {
  let calls = 0;
  return () => {
    calls++;
    clock.advance(costMs);
    return Promise.resolve(calls);
  };
}

Deno.test("CostlyReads.get() reads again every time when a read costs under 10 ms", async () => {
  const clock = new FakeClock();
  const reads = new CostlyReads(clock);
  const read = counter(clock, 9);
  assert.deepEqual(await reads.get("k", read), { value: 1, at: clock.now() - 9, reused: false });
  assert.equal((await reads.get("k", read)).value, 2);
  assert.equal((await reads.get("k", read)).value, 3);
});

Deno.test("CostlyReads.get() reuses a read for 20 times what it cost, then reads again", async () => {
  const clock = new FakeClock();
  const reads = new CostlyReads(clock);
  const read = counter(clock, 100);
  const first = await reads.get("k", read);
  assert.deepEqual(first, { value: 1, at: clock.now() - 100, reused: false });
  clock.advance(1_850); // 1,950 ms after the read started: inside its 2,000 ms
  assert.deepEqual(await reads.get("k", read), { value: 1, at: first.at, reused: true });
  assert.equal((await reads.get("other", read)).value, 2, "keys are kept apart");
  // The other read took the clock to 2,050 ms after the first read started: past its 2,000 ms.
  assert.deepEqual((await reads.get("k", read)).value, 3);
});

Deno.test("CostlyReads.get() reuses a very slow read for at most 60 s", async () => {
  const clock = new FakeClock();
  const reads = new CostlyReads(clock);
  const read = counter(clock, 10_000);
  await reads.get("k", read);
  clock.advance(49_999); // 59,999 ms after the read started
  assert.equal((await reads.get("k", read)).value, 1);
  clock.advance(1);
  assert.equal((await reads.get("k", read)).value, 2);
});

Deno.test("CostlyReads.clear() makes the next get() read again", async () => {
  const clock = new FakeClock();
  const reads = new CostlyReads(clock);
  const read = counter(clock, 500);
  await reads.get("k", read);
  assert.equal((await reads.get("k", read)).value, 1);
  reads.clear();
  assert.equal((await reads.get("k", read)).value, 2);
});
