// deno-lint-ignore-file no-console
/**
 * Runs `PostgresStorage.setup` once on `--url` (after waiting until `--at`, epoch ms, so that
 * several processes start it at the same moment) and prints the version it returned.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { connectPostgres, PostgresStorage } from "../../postgres.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { url: { type: "string" }, at: { type: "string" } },
  strict: true,
});
const pg = await connectPostgres(values.url!, { max: 1 });
try {
  const wait = Number(values.at ?? 0) - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  console.log(await PostgresStorage.setup(pg));
} finally {
  await pg.close();
}
