import assert from "node:assert/strict";
import {
  BackoffStrategy,
  IntervalStrategy,
  MultiStrategy,
  type PollStrategy,
  type PollTicker,
  type Sleep,
  StrategyBuilder,
  StreamStrategy,
} from "../../mod.ts";

/** One call of the fake sleep: what was asked, and the handles to end it. */
interface SleepCall {
  ms: number;
  signal: AbortSignal;
  resolve(): void;
}

/**
 * A fake {@linkcode Sleep}: records every requested duration; resolves at once (`auto`) or when
 * the test calls `resolve()` on the call; like the real one, it also resolves when aborted.
 */
class FakeSleep {
  calls: SleepCall[] = [];
  constructor(public auto = false) {}

  sleep: Sleep = (ms, signal) =>
    new Promise<void>((resolve) => {
      const call: SleepCall = { ms, signal, resolve };
      this.calls.push(call);
      if (this.auto) return resolve();
      signal.addEventListener("abort", () => resolve(), { once: true });
    });

  get requested(): number[] {
    return this.calls.map((call) => call.ms);
  }
}

/** A promise's state after every already-queued callback has run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(() => done = true, () => done = true);
  // A macrotask turn lets chains of microtasks (several `then`s deep) run to the end.
  await new Promise((resolve) => setTimeout(resolve, 0));
  return done;
}

/** An async iterable the test feeds by hand; counts how many items were pulled. */
class Channel<T> implements AsyncIterable<T> {
  #items: T[] = [];
  #waiting: ((result: IteratorResult<T>) => void)[] = [];
  #closed = false;
  pulled = 0;

  send(item: T): void {
    const waiter = this.#waiting.shift();
    if (waiter) waiter({ value: item, done: false });
    else this.#items.push(item);
  }

  close(): void {
    this.#closed = true;
    for (const waiter of this.#waiting.splice(0)) waiter({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        this.pulled++;
        if (this.#items.length > 0) {
          return Promise.resolve({ value: this.#items.shift()!, done: false });
        }
        if (this.#closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => this.#waiting.push(resolve));
      },
    };
  }
}

const never = new AbortController().signal;

// --- IntervalStrategy -------------------------------------------------------------------------

Deno.test("IntervalStrategy.ticker() asks for its interval on every wait, with or without work", async () => {
  const fake = new FakeSleep(true);
  const ticker = new IntervalStrategy(250).ticker(fake.sleep);
  for (const found of [true, false, false, true, false]) await ticker.wait(found, never);
  assert.deepEqual(fake.requested, [250, 250, 250, 250, 250]);
});

Deno.test("IntervalStrategy.ticker() passes the wait's abort signal to the sleep", async () => {
  const fake = new FakeSleep();
  const controller = new AbortController();
  const wait = new IntervalStrategy(1000).ticker(fake.sleep).wait(false, controller.signal);
  assert.equal(await settled(wait), false, "the wait lasts until the sleep ends");
  controller.abort();
  assert.equal(fake.calls[0]!.signal.aborted, true);
  assert.equal(await settled(wait), true, "an abort ends the wait");
});

Deno.test("IntervalStrategy.ticker() waits on a real timer when no sleep is injected", async () => {
  const controller = new AbortController();
  const wait = new IntervalStrategy(60_000).ticker().wait(false, controller.signal);
  controller.abort(); // the sanitizer fails the test if the 60 s timer were left behind
  await wait;
  await new IntervalStrategy(1).ticker().wait(false, never);
});

Deno.test("IntervalStrategy constructor throws RangeError when the interval is negative or not finite", () => {
  for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(() => new IntervalStrategy(bad), RangeError, `intervalMs ${bad}`);
  }
  assert.equal(new IntervalStrategy(0).intervalMs, 0);
});

// --- BackoffStrategy --------------------------------------------------------------------------

Deno.test("BackoffStrategy.ticker() starts at initialMs and multiplies after each empty poll up to maxMs", async () => {
  const fake = new FakeSleep(true);
  const strategy = new BackoffStrategy({ initialMs: 100, multiplier: 2, maxMs: 1000, jitter: 0 });
  const ticker = strategy.ticker(fake.sleep);
  for (let i = 0; i < 7; i++) await ticker.wait(false, never);
  assert.deepEqual(fake.requested, [100, 200, 400, 800, 1000, 1000, 1000]);
});

Deno.test("BackoffStrategy.ticker() resets to initialMs as soon as a wait is called with foundWork", async () => {
  const fake = new FakeSleep(true);
  const ticker = new BackoffStrategy({ initialMs: 50, multiplier: 3, maxMs: 10_000, jitter: 0 })
    .ticker(fake.sleep);
  for (const found of [false, false, false, true, false, false, true, true, false]) {
    await ticker.wait(found, never);
  }
  assert.deepEqual(fake.requested, [50, 150, 450, 50, 150, 450, 50, 50, 150]);
});

Deno.test("BackoffStrategy.ticker() gives each ticker its own state", async () => {
  const fake = new FakeSleep(true);
  const strategy = new BackoffStrategy({ initialMs: 10, multiplier: 2, maxMs: 1000, jitter: 0 });
  const a = strategy.ticker(fake.sleep);
  const b = strategy.ticker(fake.sleep);
  await a.wait(false, never);
  await a.wait(false, never);
  await a.wait(false, never);
  await b.wait(false, never);
  assert.deepEqual(fake.requested, [10, 20, 40, 10]);
});

Deno.test("BackoffStrategy.ticker() uses the documented defaults (100 ms doubling to 60 s) when given no options", async () => {
  const strategy = new BackoffStrategy();
  assert.deepEqual(strategy.options, {
    initialMs: 100,
    multiplier: 2,
    maxMs: 60_000,
    jitter: 0.1,
  });
  const fake = new FakeSleep(true);
  const ticker = new BackoffStrategy({ jitter: 0 }).ticker(fake.sleep);
  for (let i = 0; i < 12; i++) await ticker.wait(false, never);
  assert.deepEqual(fake.requested, [
    100,
    200,
    400,
    800,
    1600,
    3200,
    6400,
    12_800,
    25_600,
    51_200,
    60_000,
    60_000,
  ]);
});

Deno.test("BackoffStrategy.ticker() keeps every wait within ±jitter of the nominal interval when jitter is 0.5", async () => {
  const fake = new FakeSleep(true);
  const ticker = new BackoffStrategy({ initialMs: 1000, multiplier: 2, maxMs: 8000, jitter: 0.5 })
    .ticker(fake.sleep);
  const nominal: number[] = [];
  let current = 0;
  for (let i = 0; i < 400; i++) {
    const found = i % 5 === 0;
    current = found || i === 0 ? 1000 : Math.min(8000, current * 2);
    nominal.push(current);
    await ticker.wait(found, never);
  }
  const ratios = fake.requested.map((ms, i) => ms / nominal[i]!);
  for (const [i, ratio] of ratios.entries()) {
    assert.ok(
      ratio >= 0.5 && ratio <= 1.5,
      `wait ${i} asked ${fake.requested[i]} ms for a nominal ${nominal[i]} ms`,
    );
  }
  // Jitter really spreads the waits, both ways.
  assert.ok(ratios.some((r) => r < 0.9), "some waits are shorter than nominal");
  assert.ok(ratios.some((r) => r > 1.1), "some waits are longer than nominal");
});

Deno.test("BackoffStrategy constructor throws RangeError when an option is out of range", () => {
  const bad = [
    { initialMs: -1 },
    { initialMs: Number.NaN },
    { multiplier: 0.5 },
    { maxMs: 50, initialMs: 100 },
    { jitter: -0.1 },
    { jitter: 1.5 },
  ];
  for (const options of bad) {
    assert.throws(() => new BackoffStrategy(options), RangeError, JSON.stringify(options));
  }
  assert.equal(new BackoffStrategy({ jitter: 1, multiplier: 1 }).options.jitter, 1);
});

// --- StreamStrategy ---------------------------------------------------------------------------

Deno.test("StreamStrategy.ticker() ticks once per item of an async iterable", async () => {
  const channel = new Channel<string>();
  const ticker = new StreamStrategy(channel).ticker();
  const first = ticker.wait(false, never);
  assert.equal(await settled(first), false, "no item, no tick");
  channel.send("a");
  assert.equal(await settled(first), true);

  channel.send("b");
  channel.send("c");
  await ticker.wait(false, never);
  await ticker.wait(true, never);
  const fourth = ticker.wait(false, never);
  assert.equal(await settled(fourth), false, "two items, two ticks");
  assert.equal(channel.pulled, 4, "one next() per wait");
  channel.send("d");
  await fourth;
});

Deno.test("StreamStrategy.ticker() ticks on each resolution of a promise factory, rejections included", async () => {
  const resolvers: { resolve(): void; reject(e: Error): void }[] = [];
  const ticker = new StreamStrategy(() =>
    new Promise<void>((resolve, reject) => resolvers.push({ resolve, reject }))
  ).ticker();
  const first = ticker.wait(false, never);
  assert.equal(resolvers.length, 1, "each wait calls the factory once");
  assert.equal(await settled(first), false);
  resolvers[0]!.resolve();
  await first;

  const second = ticker.wait(false, never);
  assert.equal(resolvers.length, 2);
  resolvers[1]!.reject(new Error("source failed"));
  await second; // a rejected promise is a tick, not an error of the fetcher
});

Deno.test("StreamStrategy.ticker() ends a wait when its signal aborts and delivers the next item to the next wait", async () => {
  const channel = new Channel<number>();
  const ticker = new StreamStrategy(channel).ticker();
  const controller = new AbortController();
  const lost = ticker.wait(false, controller.signal);
  controller.abort();
  assert.equal(await settled(lost), true, "an abort ends the wait");

  channel.send(1); // the item answers the pending next() the aborted wait started
  await ticker.wait(false, never);
  assert.equal(channel.pulled, 1, "the aborted wait's next() was kept, not repeated");
  const after = ticker.wait(false, never);
  assert.equal(await settled(after), false, "one item, one tick");
  channel.send(2);
  await after;
});

Deno.test("StreamStrategy.ticker() never ticks again once the iterable is exhausted", async () => {
  const channel = new Channel<number>();
  const ticker = new StreamStrategy(channel).ticker();
  channel.send(1);
  await ticker.wait(false, never);
  channel.close();
  const controller = new AbortController();
  const wait = ticker.wait(false, controller.signal);
  assert.equal(await settled(wait), false, "an exhausted source does not tick");
  controller.abort();
  await wait;
});

Deno.test("StreamStrategy.ticker() of one strategy wakes every waiting ticker on one item of a shared iterable", async () => {
  const channel = new Channel<number>();
  const strategy = new StreamStrategy(channel);
  const [a, b] = [strategy.ticker(), strategy.ticker()];
  const waits = [a.wait(false, never), b.wait(false, never)];
  assert.equal(channel.pulled, 1, "the two waits share one next()");
  channel.send(1);
  await Promise.all(waits);
  const next = a.wait(false, never);
  assert.equal(await settled(next), false, "the item was consumed once");
  channel.send(2);
  await next;
});

Deno.test("StreamStrategy constructor throws TypeError when the source is neither an async iterable nor a function", () => {
  for (const bad of [42, null, undefined, {}, [1, 2], "ticks"]) {
    assert.throws(
      () => new StreamStrategy(bad as unknown as AsyncIterable<unknown>),
      TypeError,
      String(bad),
    );
  }
});

// --- StrategyBuilder / MultiStrategy ----------------------------------------------------------

Deno.test("StrategyBuilder.build() races its strategies: the first to tick wins and the loser's wait is aborted", async () => {
  const fake = new FakeSleep();
  const strategy = new StrategyBuilder()
    .apply(new IntervalStrategy(5000))
    .apply(new IntervalStrategy(100))
    .build();
  assert.ok(strategy instanceof MultiStrategy);
  const ticker = strategy.ticker(fake.sleep);

  let resolutions = 0;
  const wait = ticker.wait(false, never).then(() => resolutions++);
  assert.deepEqual(fake.requested, [5000, 100], "both strategies wait at once");
  assert.equal(await settled(wait), false);
  const [slow, fast] = fake.calls;
  fast!.resolve();
  await wait;
  assert.equal(resolutions, 1);
  assert.equal(slow!.signal.aborted, true, "the loser stops waiting");

  // The next wait starts both again; the late loser cannot resolve it.
  const next = ticker.wait(false, never).then(() => resolutions++);
  assert.deepEqual(fake.requested, [5000, 100, 5000, 100]);
  slow!.resolve();
  assert.equal(await settled(next), false, "a previous wait's sleep does not tick the next");
  fake.calls[2]!.resolve();
  await next;
  assert.equal(resolutions, 2);
  assert.equal(fake.calls[3]!.signal.aborted, true);
});

Deno.test("StrategyBuilder.build() makes one tick of two strategies ticking together (one poll, not two)", async () => {
  const fake = new FakeSleep();
  const ticker = new StrategyBuilder()
    .apply(new IntervalStrategy(100))
    .apply(new IntervalStrategy(100))
    .build()
    .ticker(fake.sleep);
  const first = ticker.wait(false, never);
  for (const call of fake.calls) call.resolve();
  await first;
  const second = ticker.wait(false, never);
  assert.equal(await settled(second), false, "the second tick is not carried over");
  fake.calls[2]!.resolve();
  await second;
});

Deno.test("StrategyBuilder.build() keeps a stream tick that lost the race for the next wait", async () => {
  const fake = new FakeSleep();
  const channel = new Channel<string>();
  const ticker = new StrategyBuilder()
    .apply(new IntervalStrategy(1000))
    .apply(new StreamStrategy(channel))
    .build()
    .ticker(fake.sleep);

  const first = ticker.wait(false, never);
  fake.calls[0]!.resolve(); // the interval wins; the stream's next() is still pending
  await first;

  channel.send("event"); // arrives between waits
  const second = ticker.wait(false, never);
  // Only the stream can end this wait: the interval's sleep is held by the test.
  assert.equal(await settled(second), true, "the item is delivered to the next wait");
  assert.equal(fake.calls[1]!.signal.aborted, true, "the interval lost this race");
  assert.equal(channel.pulled, 1);

  const third = ticker.wait(false, never);
  assert.equal(await settled(third), false, "one item, one tick");
  fake.calls[2]!.resolve();
  await third;
});

Deno.test("StrategyBuilder.build() passes foundWork to every strategy so a raced backoff resets", async () => {
  const fake = new FakeSleep();
  const ticker = new StrategyBuilder()
    .apply(new BackoffStrategy({ initialMs: 10, multiplier: 2, maxMs: 1000, jitter: 0 }))
    .apply(new IntervalStrategy(5000))
    .build()
    .ticker(fake.sleep);
  for (const found of [false, false, false, true, false]) {
    const wait = ticker.wait(found, never);
    fake.calls.at(-2)!.resolve(); // the backoff wins each race
    await wait;
  }
  assert.deepEqual(fake.requested, [10, 5000, 20, 5000, 40, 5000, 10, 5000, 20, 5000]);
});

Deno.test("StrategyBuilder.build() ends the race and aborts every strategy when the caller's signal aborts", async () => {
  const fake = new FakeSleep();
  const ticker = new StrategyBuilder()
    .apply(new IntervalStrategy(1000))
    .apply(new IntervalStrategy(2000))
    .build()
    .ticker(fake.sleep);
  const controller = new AbortController();
  const wait = ticker.wait(false, controller.signal);
  assert.equal(await settled(wait), false);
  controller.abort();
  await wait;
  assert.ok(fake.calls.every((call) => call.signal.aborted));
});

Deno.test("StrategyBuilder.build() clears the losing strategy's real timer when no sleep is injected", async () => {
  const ticker = new StrategyBuilder()
    .apply(new IntervalStrategy(60_000))
    .apply(new IntervalStrategy(1))
    .build()
    .ticker();
  // The sanitizer fails this test if the 60 s timer outlives the race.
  await ticker.wait(false, never);
});

Deno.test("StrategyBuilder.build() throws TypeError when no strategy was applied", () => {
  assert.throws(() => new StrategyBuilder().build(), TypeError);
  assert.throws(() => new MultiStrategy([]), TypeError);
});

Deno.test("StrategyBuilder.apply() throws TypeError when given something without ticker()", () => {
  for (const bad of [undefined, null, {}, { ticker: 1 }]) {
    assert.throws(
      () => new StrategyBuilder().apply(bad as unknown as PollStrategy),
      TypeError,
      JSON.stringify(bad),
    );
  }
});

Deno.test("StrategyBuilder.apply() accepts a user-defined strategy", async () => {
  const seen: boolean[] = [];
  const custom: PollStrategy = {
    ticker(): PollTicker {
      return {
        wait: (found) => {
          seen.push(found);
          return Promise.resolve();
        },
      };
    },
  };
  const ticker = new StrategyBuilder().apply(custom).build().ticker();
  await ticker.wait(true, never);
  await ticker.wait(false, never);
  assert.deepEqual(seen, [true, false]);
});
