import assert from "node:assert/strict";
import { openDatabase } from "../../mod.ts";

Deno.test("openDatabase() throws a RangeError naming 'busyRetryMs' when it is not a number >= 0", () => {
  for (const busyRetryMs of [NaN, -1, "100" as unknown as number]) {
    assert.throws(
      () => openDatabase(":memory:", { busyRetryMs }),
      (error: unknown) => error instanceof RangeError && error.message.includes("'busyRetryMs'"),
      String(busyRetryMs),
    );
  }
  // No limit is a choice: Infinity keeps retrying a busy database.
  openDatabase(":memory:", { busyRetryMs: Infinity }).close();
});
