// deno-lint-ignore-file no-console
/**
 * Builds the `apalis` executable with `bun build --compile`: one file that embeds the Bun
 * runtime and every module of the CLI, for machines without Deno, Bun or TypeScript.
 *
 * ```sh
 * deno run -A scripts/build_binary.ts                  # -> dist/apalis
 * deno run -A scripts/build_binary.ts --outfile /usr/local/bin/apalis
 * bun run scripts/build_binary.ts                      # the same under Bun
 * ```
 *
 * With a network, `deno task compile` builds the same program with `deno compile` instead.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { join, resolve } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";

/** The repository root (where `cli.ts` lives). */
export const ROOT: string = fileURLToPath(new URL("../", import.meta.url));

/** Where the binary goes by default. */
export const DEFAULT_OUTFILE: string = join(ROOT, "dist", "apalis");

/**
 * Runs `bun build --compile cli.ts --outfile OUTFILE` in the repository root. Resolves with
 * bun's output when it succeeds; rejects with it (or with "bun not found") otherwise.
 *
 * @param outfile where to write the executable, relative to the current directory (its
 *   directory is created by bun)
 * @param bun the bun executable
 */
export function buildBinary(outfile: string = DEFAULT_OUTFILE, bun = "bun"): Promise<string> {
  return new Promise((done, reject) => {
    const args = ["build", "--compile", "cli.ts", "--outfile", resolve(outfile)];
    const child = spawn(bun, args, {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => output += chunk);
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => output += chunk);
    child.on("error", (error) => {
      reject(
        new Error(
          `Cannot build the apalis binary: cannot run '${bun}' (${error.message}); install Bun, or use 'deno task compile' with a network`,
        ),
      );
    });
    child.on("close", (code, signal) => {
      if (code === 0) done(output);
      else {
        reject(
          new Error(
            `Cannot build the apalis binary: 'bun build --compile' ${
              signal ? `was killed by ${signal}` : `exited with code ${code}`
            }\n${output}`,
          ),
        );
      }
    });
  });
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { outfile: { type: "string", short: "o" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log("Usage: scripts/build_binary.ts [--outfile PATH]   (default: dist/apalis)");
    process.exit(0);
  }
  const outfile = values.outfile ?? DEFAULT_OUTFILE;
  try {
    const started = Date.now();
    await buildBinary(outfile);
    console.log(`Built ${outfile} in ${Date.now() - started} ms`);
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  }
}
