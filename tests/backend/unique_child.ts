// deno-lint-ignore-file no-console
/**
 * A pushing process for the unique race test: opens a database by its location (see
 * `openLocation` in `_backends.ts`), prints `ready PID`, waits for a line on stdin (so that every
 * child starts at once), then pushes the same unique task `--count` times, `--lanes` pushes in
 * flight at a time, through the public API only.
 *
 * Usage:
 *   deno run -A tests/backend/unique_child.ts --location LOCATION --queue Q --count N
 *     [--lanes 4] [--key K]
 *
 * Without --key the push is unique by its arguments (`{ unique: {} }`, the same arguments every
 * time). At the end it prints one JSON line: `{"inserted": n, "ids": [distinct ids answered]}`
 * and exits 0. Anything that goes wrong goes to stderr (exit 1).
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { UniqueOptions } from "../../mod.ts";
import { openLocation } from "./_backends.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    location: { type: "string" },
    queue: { type: "string" },
    count: { type: "string" },
    lanes: { type: "string", default: "4" },
    key: { type: "string" },
  },
});
if (!values.location || !values.queue || !values.count) {
  console.error("usage: unique_child.ts --location L --queue Q --count N [--lanes 4] [--key K]");
  Deno.exit(2);
}

const connection = await openLocation(values.location);
const storage = connection.storage<{ report: string }>(values.queue);
const unique: UniqueOptions = values.key === undefined ? {} : { key: values.key };
const count = Number(values.count);
const lanes = Number(values.lanes);

console.log(`ready ${Deno.pid}`);
// The parent writes a line once every child is ready.
const reader = Deno.stdin.readable.getReader();
await reader.read();
reader.releaseLock();

let inserted = 0;
let next = 0;
const ids = new Set<string>();
try {
  await Promise.all(Array.from({ length: lanes }, async () => {
    while (next < count) {
      next++;
      const result = await storage.pushDetailed({ report: "daily" }, { unique });
      if (result.inserted) inserted++;
      ids.add(result.id);
    }
  }));
  console.log(JSON.stringify({ inserted, ids: [...ids] }));
} catch (error) {
  console.error(error);
  Deno.exitCode = 1;
} finally {
  await connection.close();
}
