/**
 * The `apalis` command line: enqueue, run workers, inspect and repair queues.
 *
 * ```sh
 * deno run -A cli.ts --help
 * deno task compile            # one executable, ./apalis (needs network for deno compile)
 * deno task compile:bun        # the same with bun build --compile
 * ```
 *
 * @module
 */
import process from "node:process";
import { main } from "./lib/cli/main.ts";
import { processIo } from "./lib/cli/process_io.ts";

if (import.meta.main) {
  const io = processIo();
  const code = await main(process.argv.slice(2), io);
  // Exit only once the output is written: on Bun, a pipe takes it after process.exit() would.
  process.exit(await io.finish(code));
}
