/**
 * package.json is Bun's view of our npm dependencies. Once `node_modules` exists in a checkout
 * (the binary's build installs it), Bun resolves from it alone and no longer installs a missing
 * package on the fly, so a package the library imports but package.json lacks breaks `bun run`
 * of every example that loads it. This keeps package.json in step with deno.json and deno.lock.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

const root = new URL("../", import.meta.url);
const readJson = (name: string) => JSON.parse(readFileSync(new URL(name, root), "utf8"));

/** npm packages only the Deno tests use; the library, CLI and examples never import them. */
const TEST_ONLY = new Set(["playwright-core"]);

Deno.test("package.json pins every npm package deno.json maps, at the version deno.lock resolves", () => {
  const imports: Record<string, string> = readJson("deno.json").imports;
  const lock: { specifiers: Record<string, string> } = readJson("deno.lock");
  const { dependencies }: { dependencies: Record<string, string> } = readJson("package.json");
  for (const [name, specifier] of Object.entries(imports)) {
    if (!specifier.startsWith("npm:") || TEST_ONLY.has(name)) continue;
    const resolved = lock.specifiers[specifier];
    assert.ok(resolved, `deno.lock does not resolve ${specifier}`);
    assert.equal(
      dependencies[name],
      resolved,
      `package.json must pin ${name} at ${resolved} (what deno.lock resolves ${specifier} to)`,
    );
  }
});
