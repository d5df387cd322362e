/**
 * The examples in the README and the guides: every TypeScript block type-checks against the
 * library (`deno check --doc-only`), none is left out with `ts ignore`, and the guides whose
 * examples are self-contained run in `deno task test` (the task's `--doc` list names them). A
 * block that needs a PostgreSQL server or runs a worker until SIGINT is type-checked only.
 *
 * @module
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { runCommand } from "./_command.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const DOCS = [
  "README.md",
  ...readdirSync(`${ROOT}docs`).filter((name) => name.endsWith(".md")).sort().map((name) =>
    `docs/${name}`
  ),
];

Deno.test("every TypeScript example in the README and docs/ type-checks", async () => {
  const run = await runCommand(Deno.execPath(), {
    args: ["check", "--doc-only", ...DOCS],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
  });
  assert.equal(run.code, 0, run.stdout + run.stderr);
});

Deno.test("no TypeScript example in the README and docs/ is left out of the check", () => {
  const ignored = DOCS.filter((file) =>
    /^```(ts|typescript) ignore/m.test(readFileSync(`${ROOT}${file}`, "utf8"))
  );
  assert.deepEqual(ignored, [], "write a block that type-checks (declare what it assumes)");
});

Deno.test("each guide in docs/ that runs its examples is in the test task's --doc list", () => {
  const task: string = JSON.parse(readFileSync(`${ROOT}deno.json`, "utf8")).tasks.test;
  for (
    const guide of [
      "getting-started",
      "testing",
      "operating",
      "migrating",
      "workflows",
      "flow-control",
    ]
  ) {
    assert.ok(task.includes(`docs/${guide}.md`), `docs/${guide}.md runs in deno task test`);
  }
});
