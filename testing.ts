/**
 * Helpers for testing code that uses the queue, after River's `rivertest` and Oban's
 * `Oban.Testing`: a database of the test's own, assertions on what was enqueued, the queue's due
 * tasks run inline, and a clock the test moves.
 *
 * @example A handler's effect, tested end to end
 * ```ts
 * import { assertEnqueued, drainQueue, tempDatabase } from "@apalis/sqlite/testing";
 *
 * await using db = await tempDatabase();
 * const signups = db.storage<{ email: string }>("signup");
 * const emails = db.storage<{ to: string; template: string }>("email");
 * await signups.push({ email: "a@b.c" });
 * await drainQueue(signups, async ({ email }) => {
 *   await emails.push({ to: email, template: "welcome" });
 * });
 * await assertEnqueued(emails, { args: { to: "a@b.c", template: "welcome" }, count: 1 });
 * ```
 *
 * @module
 */
export { TestClock } from "./lib/testing/clock.ts";
export { type TempDatabase, tempDatabase } from "./lib/testing/temp_database.ts";
export {
  assertEnqueued,
  type EnqueuedFilter,
  enqueuedTasks,
  refuteEnqueued,
} from "./lib/testing/enqueued.ts";
export { type DrainOptions, drainQueue, type DrainResult } from "./lib/testing/drain.ts";
export { matches } from "./lib/testing/matching.ts";
