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
 * The binary contains the PostgreSQL client (`postgres`, pinned in package.json and bun.lock):
 * bun bundles only what node_modules holds, so the build first installs package.json's
 * dependencies there when they are missing (`bun install --frozen-lockfile`, from bun's cache or
 * the npm registry). package.json pins every npm package the library imports (the MessagePack
 * codec too): once node_modules exists, Bun stops installing missing packages on the fly, and
 * `bun run` of anything in this checkout resolves from it alone.
 *
 * With a network, `deno task compile` builds the same program with `deno compile` instead.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
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
export async function buildBinary(
  outfile: string = DEFAULT_OUTFILE,
  bun = "bun",
): Promise<string> {
  const installed = await installDependencies(bun);
  return installed + await runBun(
    bun,
    ["build", "--compile", "cli.ts", "--outfile", resolve(outfile)],
    ROOT,
    "build the apalis binary",
    "'bun build --compile'",
  );
}

/**
 * Installs package.json's dependencies (the PostgreSQL client, the MessagePack codec) into `ROOT/node_modules` when
 * they are not there yet, at the versions bun.lock pins. Builds that run at once (tests in
 * parallel) do not trip over each other: each installs into a directory of its own, then
 * renames it into place, and the first rename wins.
 */
export async function installDependencies(bun = "bun"): Promise<string> {
  const target = join(ROOT, "node_modules");
  if (dependenciesInstalled(target)) return "";
  const scratch = mkdtempSync(join(ROOT, ".install-"));
  try {
    for (const file of ["package.json", "bun.lock"]) {
      writeFileSync(join(scratch, file), readFileSync(join(ROOT, file)));
    }
    const output = await runBun(
      bun,
      ["install", "--frozen-lockfile", "--production", "--no-progress"],
      scratch,
      "install the PostgreSQL client for the apalis binary",
      "'bun install'",
    );
    try {
      renameSync(join(scratch, "node_modules"), target);
    } catch (error) {
      // Another build installed it meanwhile; else node_modules holds other versions.
      if (!dependenciesInstalled(target)) {
        throw new Error(
          `Cannot install the PostgreSQL client for the apalis binary: ${target} exists with other versions than package.json pins (run 'bun install --frozen-lockfile' in ${ROOT})`,
          { cause: error },
        );
      }
    }
    return output;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Whether `node_modules` holds every dependency of package.json at its pinned version. */
function dependenciesInstalled(nodeModules: string): boolean {
  const { dependencies = {} } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
    dependencies?: Record<string, string>;
  };
  return Object.entries(dependencies).every(([name, version]) => {
    const manifest = join(nodeModules, name, "package.json");
    return existsSync(manifest) &&
      (JSON.parse(readFileSync(manifest, "utf8")) as { version?: string }).version === version;
  });
}

/** Runs `bun args` in `cwd`; resolves with its output, rejects with it when it fails. */
function runBun(
  bun: string,
  args: string[],
  cwd: string,
  what: string,
  step: string,
): Promise<string> {
  return new Promise((done, reject) => {
    const child = spawn(bun, args, {
      cwd,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => output += chunk);
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => output += chunk);
    child.on("error", (error) => {
      reject(
        new Error(
          `Cannot ${what}: cannot run '${bun}' (${error.message}); install Bun, or use 'deno task compile' with a network`,
        ),
      );
    });
    child.on("close", (code, signal) => {
      if (code === 0) done(output);
      else {
        reject(
          new Error(
            `Cannot ${what}: ${step} ${
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
