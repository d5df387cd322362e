// deno-lint-ignore-file no-console
/**
 * Builds the package for Node (and any bundler or runtime that reads npm packages): JavaScript
 * with type declarations, compiled by TypeScript's `tsc` from the same sources, so that Node runs
 * it from `node_modules` without flags (Node does not strip types there). Also compiles the
 * end-to-end scripts against it, so that CI runs them on Node as it runs them on Bun.
 *
 * ```sh
 * deno task build:npm            # -> dist/npm (the package), dist/node-e2e (the e2e scripts)
 * cd dist/npm && npm publish     # with a network and an npm account
 * ```
 *
 * `tsc` and `@types/node` are pinned in package.json's devDependencies (and bun.lock); the build
 * installs them into `dist/.toolchain` with `bun install --frozen-lockfile` when they are missing.
 * `tsc` runs on `node` (`APALIS_NODE` names another), else on Bun.
 *
 * @module
 */
import { spawn } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { installDependencies } from "./build_binary.ts";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL("../", import.meta.url));
/** Where the package goes. */
export const PACKAGE_DIR: string = join(ROOT, "dist", "npm");
/** Where the compiled end-to-end scripts go. */
export const E2E_DIR: string = join(ROOT, "dist", "node-e2e");

/** The package's entry points: export path → source file. */
const ENTRY_POINTS: Record<string, string> = {
  ".": "mod.ts",
  "./board": "board.ts",
  "./msgpack": "msgpack.ts",
  "./postgres": "postgres.ts",
  "./testing": "testing.ts",
};

/** The end-to-end scripts Node runs (and the child scripts they spawn). */
const E2E_SCRIPTS = [
  "tests/e2e/runtime_e2e.ts",
  "tests/e2e/worker_process.ts",
  "tests/e2e/runtime_postgres_e2e.ts",
  "tests/postgres/pg_worker.ts",
];

/** The oldest Node the package supports: the first 22.x with `node:sqlite` unflagged. */
export const MIN_NODE = "22.13.0";

/**
 * Builds the package into `packageDir` and, unless `e2eDir` is null, the end-to-end scripts;
 * resolves with tsc's output, rejects with it when a step fails.
 */
export async function buildNpm(
  options: { packageDir?: string; e2eDir?: string | null } = {},
): Promise<string> {
  const { packageDir = PACKAGE_DIR, e2eDir = E2E_DIR } = options;
  let output = await installToolchain();
  rmSync(packageDir, { recursive: true, force: true });
  output += await tsc("package", Object.values(ENTRY_POINTS), packageDir, true);
  if (e2eDir !== null) {
    rmSync(e2eDir, { recursive: true, force: true });
    output += await tsc("e2e", E2E_SCRIPTS, e2eDir, false);
  }
  writePackageJson(packageDir);
  for (const file of ["README.md", "LICENSE-MIT", "LICENSE-APACHE"]) {
    copyFileSync(join(ROOT, file), join(packageDir, file));
  }
  return output;
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, "utf8")) as T;
}

/** Where tsc and @types/node are installed (package.json's devDependencies, as bun.lock pins). */
export const TOOLCHAIN_DIR: string = join(ROOT, "dist", ".toolchain");
/** The TypeScript compiler. */
export const TSC: string = join(TOOLCHAIN_DIR, "node_modules", "typescript", "bin", "tsc");

/**
 * Installs what the build needs when it is missing: the library's dependencies in
 * `ROOT/node_modules` (their types; as the binary's build does) and the toolchain in a directory
 * of its own (`bun install --frozen-lockfile` of package.json and bun.lock there). Builds that
 * run at once do not trip over each other: each installs into a scratch directory, then renames
 * it into place, and the first rename wins.
 */
async function installToolchain(): Promise<string> {
  let output = await installDependencies();
  const { devDependencies = {} } = readJson<{ devDependencies?: Record<string, string> }>(
    join(ROOT, "package.json"),
  );
  const installed = () =>
    Object.entries(devDependencies).every(([name, version]) => {
      const manifest = join(TOOLCHAIN_DIR, "node_modules", name, "package.json");
      return existsSync(manifest) && readJson<{ version: string }>(manifest).version === version;
    });
  if (installed()) return output;
  mkdirSync(join(ROOT, "dist"), { recursive: true });
  const scratch = mkdtempSync(join(ROOT, "dist", ".toolchain-"));
  try {
    for (const file of ["package.json", "bun.lock"]) {
      copyFileSync(join(ROOT, file), join(scratch, file));
    }
    output += await run("bun", ["install", "--frozen-lockfile", "--no-progress"], "install tsc", {
      cwd: scratch,
    });
    rmSync(TOOLCHAIN_DIR, { recursive: true, force: true });
    try {
      renameSync(scratch, TOOLCHAIN_DIR);
    } catch (error) {
      if (!installed()) throw error; // else another build installed it meanwhile
    }
    return output;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Compiles `files` (and what they import) into `outDir`, with declarations when asked. */
async function tsc(
  name: string,
  files: readonly string[],
  outDir: string,
  declaration: boolean,
): Promise<string> {
  mkdirSync(outDir, { recursive: true });
  const config = join(outDir, `tsconfig.${name}.json`); // removed once compiled
  writeFileSync(
    config,
    JSON.stringify(
      {
        compilerOptions: {
          target: "ES2023",
          lib: ["ES2023", "ESNext.Disposable", "DOM", "DOM.Iterable"],
          module: "NodeNext",
          moduleResolution: "NodeNext",
          // Sources import `./x.ts` (as Deno and Bun want); the output imports `./x.js`.
          rewriteRelativeImportExtensions: true,
          declaration,
          strict: true,
          noImplicitOverride: true,
          noUncheckedIndexedAccess: true,
          skipLibCheck: true,
          types: ["node"],
          typeRoots: [join(TOOLCHAIN_DIR, "node_modules", "@types")],
          rootDir: ROOT,
          outDir,
        },
        files: files.map((file) => join(ROOT, file)),
      },
      null,
      2,
    ),
  );
  const node = process.env.APALIS_NODE ?? "node";
  try {
    return await run(node, [TSC, "-p", config], `compile the ${name} with tsc`);
  } catch (error) {
    if (!(error instanceof CommandMissing)) throw error;
    return await run("bun", [TSC, "-p", config], `compile the ${name} with tsc`);
  } finally {
    rmSync(config, { force: true });
  }
}

/** The package's manifest: ESM, typed entry points, the library's npm dependencies. */
function writePackageJson(packageDir: string): void {
  const deno = readJson<{ version: string; license: string }>(join(ROOT, "deno.json"));
  const { dependencies } = readJson<{ dependencies: Record<string, string> }>(
    join(ROOT, "package.json"),
  );
  const exports: Record<string, { types: string; default: string }> = {};
  for (const [path, source] of Object.entries(ENTRY_POINTS)) {
    const base = `./${source.replace(/\.ts$/, "")}`;
    exports[path] = { types: `${base}.d.ts`, default: `${base}.js` };
  }
  const manifest = {
    name: "@apalis/sqlite",
    version: deno.version,
    description:
      "A durable background task queue on SQLite (one file) or PostgreSQL: retries with persisted backoff, workflows, cron, a CLI and a dashboard.",
    license: deno.license,
    type: "module",
    exports,
    engines: { node: `>=${MIN_NODE}` },
    dependencies,
    sideEffects: false,
    keywords: ["queue", "job", "task", "background", "sqlite", "postgres", "worker", "cron"],
  };
  writeFileSync(join(packageDir, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
}

class CommandMissing extends Error {}

function run(
  command: string,
  args: string[],
  what: string,
  options: { cwd?: string } = {},
): Promise<string> {
  return new Promise((done, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => output += chunk);
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => output += chunk);
    child.on("error", (error) => {
      reject(new CommandMissing(`Cannot ${what}: cannot run '${command}' (${error.message})`));
    });
    child.on("close", (code, signal) => {
      if (code === 0) done(output);
      else {
        reject(
          new Error(
            `Cannot ${what}: '${command} ${args.join(" ")}' ${
              signal ? `was killed by ${signal}` : `exited with code ${code}`
            }\n${output}`,
          ),
        );
      }
    });
  });
}

if (import.meta.main) {
  try {
    const output = await buildNpm();
    if (output.trim() !== "") console.log(output.trim());
    console.log(`built ${PACKAGE_DIR} and ${E2E_DIR}`);
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  }
}
