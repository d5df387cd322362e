/**
 * Which runtime runs the end-to-end scripts (Bun or Node; Deno has its own tests), and how to
 * start a sibling script in a child process on the same runtime. Under Node the scripts run
 * compiled to JavaScript (`deno task build:npm`), so a sibling is its `.js` file. Uses `node:`
 * APIs only.
 *
 * @module
 */
import process from "node:process";
import { fileURLToPath } from "node:url";

/** The runtime running this script. */
export const RUNTIME: "bun" | "node" | "deno" = "Bun" in globalThis
  ? "bun"
  : "Deno" in globalThis
  ? "deno"
  : "node";

/** The runtime and its version, for the log. */
export const RUNTIME_LABEL = RUNTIME === "bun"
  ? `bun ${process.versions.bun}`
  : `${RUNTIME} ${process.versions.node}`;

/** Whether this file runs compiled (a `.js` file beside the other compiled scripts). */
const COMPILED = import.meta.url.endsWith(".js");

/**
 * The command and arguments that run the script at `url` (a `.ts` path beside the caller) on
 * this runtime: `bun run x.ts`, or `node x.js` compiled (without Node's SQLite warning, which
 * would land in the child's stderr).
 */
export function scriptCommand(url: URL): [string, string[]] {
  const path = fileURLToPath(url);
  if (RUNTIME === "node") {
    const file = COMPILED ? path.replace(/\.ts$/, ".js") : path;
    return [process.execPath, ["--disable-warning=ExperimentalWarning", file]];
  }
  return [RUNTIME === "bun" ? process.execPath : "bun", ["run", path]];
}
