/**
 * The compiled `apalis` executable for end-to-end tests: built with `bun build --compile` when
 * bun is installed. Without bun the binary tests are ignored, unless
 * `APALIS_BINARY_TEST=required` (CI), where they fail.
 *
 * @module
 */
import { buildBinary } from "../../scripts/build_binary.ts";

/** Whether CI requires the binary tests to run (`APALIS_BINARY_TEST=required`). */
export const BINARY_TEST_REQUIRED = Deno.env.get("APALIS_BINARY_TEST") === "required";

/** Whether `bun` runs on this machine. */
export const HAS_BUN: boolean = (() => {
  try {
    return new Deno.Command("bun", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

/** Ignore the binary tests: no bun, and CI does not require them. */
export const IGNORE_BINARY_TEST: boolean = !HAS_BUN && !BINARY_TEST_REQUIRED;

/** Says once, on stderr, that the tests of `file` are ignored (no bun). */
export function warnIfIgnored(file: string): void {
  if (!IGNORE_BINARY_TEST) return;
  // deno-lint-ignore no-console
  console.warn(
    `${file}: binary tests ignored because bun is not installed (APALIS_BINARY_TEST=required makes this a failure)`,
  );
}

/**
 * Builds the executable at `path`; fails with a clear message when bun is missing (the tests
 * are only run then because `APALIS_BINARY_TEST=required`).
 */
export async function buildTestBinary(path: string): Promise<string> {
  if (!HAS_BUN) {
    throw new Error(
      "Cannot run the binary tests: bun is not installed and APALIS_BINARY_TEST=required (install Bun, e.g. 'npm install -g bun')",
    );
  }
  await buildBinary(path);
  return path;
}
