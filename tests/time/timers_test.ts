import assert from "node:assert/strict";
import process from "node:process";
import { MAX_TIMER_MS, setLongInterval, setLongTimeout, sleep } from "../../lib/time/timers.ts";

const DAY_MS = 86_400_000;

/** Collects the process warnings emitted while `fn` runs (TimeoutOverflowWarning and friends). */
async function warningsDuring(fn: () => Promise<void>): Promise<string[]> {
  const seen: string[] = [];
  const listener = (warning: Error) => seen.push(`${warning.name}: ${warning.message}`);
  process.on("warning", listener);
  try {
    await fn();
    await new Promise((resolve) => setTimeout(resolve, 10)); // warnings are emitted on a tick
  } finally {
    process.off("warning", listener);
  }
  return seen;
}

Deno.test("setLongTimeout() fires once, no earlier than its delay, when the delay spans several chunks", async () => {
  const started = performance.now();
  const fired: number[] = [];
  setLongTimeout(() => fired.push(performance.now() - started), 70, 20);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(fired.length, 1);
  assert.ok(fired[0]! >= 69, `fired after ${fired[0]} ms`);
});

Deno.test("setLongTimeout() never fires once cleared, in its first or a later chunk", async () => {
  let fired = 0;
  const early = setLongTimeout(() => fired++, 60, 20);
  early.clear();
  const late = setLongTimeout(() => fired++, 60, 20);
  setTimeout(() => late.clear(), 30); // during its second chunk
  await new Promise((resolve) => setTimeout(resolve, 120));
  assert.equal(fired, 0);
});

Deno.test("setLongTimeout() does not fire and prints no TimeoutOverflowWarning when the delay is 30 days or Infinity", async () => {
  let fired = 0;
  const warnings = await warningsDuring(async () => {
    const month = setLongTimeout(() => fired++, 30 * DAY_MS);
    const never = setLongTimeout(() => fired++, Infinity);
    const justOver = setLongTimeout(() => fired++, MAX_TIMER_MS + 1);
    await new Promise((resolve) => setTimeout(resolve, 150));
    month.clear();
    never.clear();
    justOver.clear();
  });
  assert.equal(fired, 0, "a timer of 2^31 ms or more fired at once");
  assert.deepEqual(warnings, []);
});

Deno.test("setLongTimeout() and setLongInterval() throw a RangeError when the delay is NaN", () => {
  assert.throws(() => setLongTimeout(() => {}, NaN), RangeError);
  assert.throws(() => setLongInterval(() => {}, NaN), RangeError);
});

Deno.test("setLongInterval() fires every period, no sooner, when the period spans several chunks, and stops when cleared from its callback", async () => {
  const started = performance.now();
  const times: number[] = [];
  let third!: () => void;
  const thirdTick = new Promise<void>((resolve) => third = resolve);
  const timer = setLongInterval(
    () => {
      times.push(performance.now() - started);
      if (times.length === 3) {
        timer.clear();
        third();
      }
    },
    40,
    15,
  );
  // A loaded machine delays ticks: wait for the third (up to 10 s), then two more periods.
  let cap: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([thirdTick, new Promise((resolve) => cap = setTimeout(resolve, 10_000))]);
  clearTimeout(cap);
  await new Promise((resolve) => setTimeout(resolve, 100));
  timer.clear();
  assert.equal(times.length, 3, `fired at ${times.join(", ")}`);
  for (const [i, at] of times.entries()) {
    assert.ok(at >= 40 * (i + 1) - 1, `tick ${i + 1} at ${at}`);
  }
});

Deno.test("setLongInterval() does not fire and prints no TimeoutOverflowWarning when the period is 30 days", async () => {
  let fired = 0;
  const warnings = await warningsDuring(async () => {
    const timer = setLongInterval(() => fired++, 30 * DAY_MS);
    await new Promise((resolve) => setTimeout(resolve, 150));
    timer.clear();
  });
  assert.equal(fired, 0);
  assert.deepEqual(warnings, []);
});

Deno.test("sleep() resolves after its delay across chunks, and at once when its signal aborts", async () => {
  const started = performance.now();
  await sleep(50, undefined, 20);
  assert.ok(performance.now() - started >= 49);

  const controller = new AbortController();
  let woke = false;
  const month = sleep(30 * DAY_MS, controller.signal).then(() => woke = true);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(woke, false, "a 30-day sleep woke at once");
  controller.abort();
  await month;
  assert.equal(woke, true);

  const aborted = new AbortController();
  aborted.abort();
  await sleep(30 * DAY_MS, aborted.signal); // resolves at once
});
