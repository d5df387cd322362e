/**
 * The conformance suite's registration and shared helpers. `backendTest(name, fn)` registers
 * one test per backend of `BACKENDS`, named `[backend] name`, each on a fresh database.
 *
 * A backend that is unavailable here (no server) has its tests ignored, with the reason in their
 * names, unless `APALIS_REQUIRE_BACKENDS` (comma-separated names, as CI sets it) names it: they
 * then fail with the reason.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Admin, Worker, WorkerEvent } from "../../mod.ts";
import { FakeClock, gate, waitUntil } from "../_helpers.ts";
import { BACKENDS, type TestDatabase } from "./_backends.ts";

export { FakeClock, gate, waitUntil };
export type { TestDatabase };

/** Backends that must run here (`APALIS_REQUIRE_BACKENDS=postgres`): unavailable is a failure. */
export const REQUIRED_BACKENDS: readonly string[] = (Deno.env.get("APALIS_REQUIRE_BACKENDS") ?? "")
  .split(",").map((name) => name.trim()).filter((name) => name !== "");

/** Registers `[backend] name` for every backend, each run on a fresh database. */
export function backendTest(
  name: string,
  fn: (db: TestDatabase, t: Deno.TestContext) => Promise<void>,
): void {
  for (const backend of BACKENDS) {
    const { unavailable } = backend;
    if (unavailable !== undefined && !REQUIRED_BACKENDS.includes(backend.name)) {
      Deno.test({
        name: `[${backend.name}] ${name} (ignored: ${unavailable})`,
        ignore: true,
        fn() {},
      });
      continue;
    }
    Deno.test(`[${backend.name}] ${name}`, async (t) => {
      if (unavailable !== undefined) {
        throw new Error(
          `Backend '${backend.name}' is required (APALIS_REQUIRE_BACKENDS) but unavailable: ${unavailable}`,
        );
      }
      await using db = await backend.fresh();
      await fn(db, t);
    });
  }
}

/** A fake clock that counts its reads: a worker reads it at every poll. */
export class CountingClock extends FakeClock {
  reads = 0;
  override now(): number {
    this.reads++;
    return super.now();
  }
}

/** Waits until the clock has been read `n` more times: the worker polled again meanwhile. */
export async function afterReads(clock: CountingClock, n = 40): Promise<void> {
  const from = clock.reads;
  await waitUntil(() => clock.reads >= from + n, `${n} more reads of the clock (polls)`);
}

/** A worker started with `run()`; disposing stops it and waits for its exit. */
export interface Running extends AsyncDisposable {
  /** The worker's `run()`. */
  readonly done: Promise<void>;
  /** Stops the worker and waits for `run()` to settle (rejections are the test's to check). */
  stop(): Promise<void>;
}

/** Runs `worker` until the returned handle is stopped or disposed. */
export function start<T>(worker: Worker<T>): Running {
  const done = worker.run();
  done.catch(() => {}); // a rejection is asserted by the test that expects it
  const stop = async () => {
    await worker.stop();
    await done.catch(() => {});
  };
  return { done, stop, [Symbol.asyncDispose]: stop };
}

/** Worker events, kept in order, with a listener to pass to `onEvent`. */
export function eventLog(): {
  events: WorkerEvent[];
  listener: (_: unknown, e: WorkerEvent) => void;
} {
  const events: WorkerEvent[] = [];
  return { events, listener: (_ctx, event) => events.push(event) };
}

/** The task error events of a log. */
export function taskErrors(
  events: readonly WorkerEvent[],
): Extract<WorkerEvent, { type: "error" }>[] {
  return events.filter((e): e is Extract<WorkerEvent, { type: "error" }> =>
    e.type === "error" && e.task !== undefined
  );
}

/** Asserts that no task of `queue` is held (`queued` or `running`). */
export async function assertNoneHeld(admin: Admin, queue?: string): Promise<void> {
  const counts = await admin.stats(queue);
  assert.equal(counts.running, 0, `tasks left running: ${JSON.stringify(counts)}`);
  assert.equal(counts.queued, 0, `tasks left queued: ${JSON.stringify(counts)}`);
}
