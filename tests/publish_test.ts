/**
 * What `deno publish` would publish: the library, its entry points and its docs, and nothing of
 * the repository's own machinery (tests, benchmarks, images, CI and build scripts).
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { runCommand } from "./_command.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

Deno.test("deno publish --dry-run publishes the library and its docs only", async () => {
  const run = await runCommand(Deno.execPath(), {
    args: ["publish", "--dry-run", "--allow-dirty"],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
  });
  const output = run.stdout + run.stderr;
  assert.equal(run.code, 0, output);
  const files = [...output.matchAll(/^\s+file:\/\/(\S+) \(/gm)].map((match) =>
    match[1]!.slice(ROOT.length)
  );
  assert.ok(files.length > 50, `the file list was not found in:\n${output}`);
  for (
    const entry of ["mod.ts", "board.ts", "msgpack.ts", "postgres.ts", "testing.ts", "README.md"]
  ) {
    assert.ok(files.includes(entry), `${entry} is published`);
  }
  const allowed =
    /^(README\.md|LICENSE-(MIT|APACHE)|deno\.json|[a-z_]+\.ts|lib\/.+\.ts|docs\/[a-z-]+\.md|examples\/[a-z_]+\.ts)$/;
  const stray = files.filter((file) => !allowed.test(file));
  assert.deepEqual(stray, [], "only the library, its docs and examples");
  assert.ok(!files.some((file) => /^(tests|bench|scripts|\.ci)\//.test(file)));
});
