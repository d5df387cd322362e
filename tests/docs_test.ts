/**
 * The examples in the README and the guides: every TypeScript block type-checks against the
 * library (`deno check --doc-only`), none is left out with `ts ignore`, the guides whose
 * examples are all self-contained run in `deno task test` (the task's `--doc` list names them),
 * and every guide's opening example runs. A block that needs a PostgreSQL server or runs a worker
 * until SIGINT is type-checked only.
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

/** Guides whose opening example needs what a test does not have (a PostgreSQL server at a made-up
 * address, a dashboard served until Ctrl-C): type-checked only. */
const OPENING_TYPE_CHECKED_ONLY = new Set(["docs/postgres.md", "docs/dashboard.md"]);

for (const file of DOCS.filter((file) => file.startsWith("docs/"))) {
  const text = readFileSync(`${ROOT}${file}`, "utf8");
  const opening = /^```ts\n([\s\S]*?)^```$/m.exec(text)?.[1];
  if (opening === undefined || OPENING_TYPE_CHECKED_ONLY.has(file)) continue;
  Deno.test(`the opening example of ${file} runs`, async () => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "-"],
      cwd: ROOT, // deno.json maps @apalis/sqlite to this checkout
      env: { NO_COLOR: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(opening));
    await writer.close();
    const output = await child.output();
    const decoder = new TextDecoder();
    assert.equal(
      output.code,
      0,
      decoder.decode(output.stdout) + decoder.decode(output.stderr),
    );
  });
}
