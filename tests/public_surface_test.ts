/**
 * The public surface, as Deno's standard library checks its own:
 *
 * - The front-ends (`lib/cli/**`, `lib/board/**`) use the library as its users do: through the
 *   entry points in deno.json's `exports` (`mod.ts`, `board.ts`, `postgres.ts`, ...), `node:`
 *   modules and npm packages, besides their own folder. They may also share `lib/format/**` and
 *   `lib/time/**`: leaf modules of text and timer helpers that hold no library state and import
 *   nothing of the library (checked below), so sharing them exposes no internals.
 * - A file or folder whose name starts with `_` is private to the folder it is in: only files in
 *   that folder (or below it) import it, anywhere in the repository.
 * - Each entry point exports exactly the names in `tests/public_surface.json`, so that the surface
 *   changes only on purpose. After a deliberate change, rewrite the file with
 *   `APALIS_UPDATE_SURFACE=1 deno test -A tests/public_surface_test.ts` and review its diff.
 *
 * Imports are read from the source text (static `import`/`export … from`, side-effect `import`
 * and dynamic `import("…")`, doc examples included), so a check needs no type graph.
 *
 * @module
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const SNAPSHOT = join(ROOT, "tests", "public_surface.json");
const DENO_JSON = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8")) as {
  exports: Record<string, string>;
  imports: Record<string, string>;
};
/** The entry points, as repository paths: `mod.ts`, `board.ts`, ... */
const ENTRY_POINTS = Object.values(DENO_JSON.exports).map((path) => normalize(path));

const FRONT_ENDS = ["lib/cli/", "lib/board/"];
const SHARED_LEAVES = ["lib/format/", "lib/time/"];

/** One import that breaks a rule: who imports what, and which rule. */
interface Violation {
  file: string;
  specifier: string;
  rule: "front-end" | "private" | "leaf";
}

const STATIC = /(?:^|[;\s}*])(?:import|export)\b[^;"'`]*?\bfrom\s*(["'])([^"'\n]+)\1/gm;
const SIDE_EFFECT = /^[\s*]*import\s*(["'])([^"'\n]+)\1/gm;
const DYNAMIC = /\bimport\s*\(\s*(["'])([^"'\n]+)\1/g;

/** Every module specifier `source` imports or re-exports. */
export function specifiersOf(source: string): string[] {
  const found: string[] = [];
  for (const pattern of [STATIC, SIDE_EFFECT, DYNAMIC]) {
    for (const match of source.matchAll(pattern)) found.push(match[2]!);
  }
  return found;
}

/** Whether a non-relative specifier names something outside the repository's own code. */
function isExternal(specifier: string): boolean {
  if (specifier.startsWith("node:") || specifier.startsWith("npm:")) return true;
  return Object.keys(DENO_JSON.imports).some((name) =>
    specifier === name || specifier.startsWith(`${name}/`)
  );
}

/** The entry point a package specifier (`@apalis/sqlite/board`) names, if any. */
function packageEntry(specifier: string): string | undefined {
  const match = /^@apalis\/sqlite(\/[a-z]+)?$/.exec(specifier);
  if (!match) return undefined;
  const path = DENO_JSON.exports[match[1] === undefined ? "." : `.${match[1]}`];
  return path === undefined ? undefined : normalize(path);
}

/** The rules' violations in `files` (repository path → source text). */
export function violations(files: ReadonlyMap<string, string>): Violation[] {
  const found: Violation[] = [];
  for (const [file, source] of files) {
    const frontEnd = FRONT_ENDS.find((folder) => file.startsWith(folder));
    const leaf = SHARED_LEAVES.find((folder) => file.startsWith(folder));
    for (const specifier of specifiersOf(source)) {
      const relativeTarget = specifier.startsWith("./") || specifier.startsWith("../");
      const target = relativeTarget
        ? normalize(join(dirname(file), specifier))
        : packageEntry(specifier);
      if (relativeTarget && target !== undefined) {
        const segments = target.split("/");
        segments.forEach((segment, i) => {
          const owner = segments.slice(0, i).join("/");
          if (segment.startsWith("_") && !file.startsWith(owner === "" ? "" : `${owner}/`)) {
            found.push({ file, specifier, rule: "private" });
          }
        });
      }
      if (frontEnd !== undefined) {
        const allowed = target === undefined
          ? isExternal(specifier)
          : target.startsWith(frontEnd) || ENTRY_POINTS.includes(target) ||
            SHARED_LEAVES.some((folder) => target.startsWith(folder));
        if (!allowed) found.push({ file, specifier, rule: "front-end" });
      }
      if (leaf !== undefined) {
        const allowed = target === undefined
          ? specifier.startsWith("node:")
          : SHARED_LEAVES.some((folder) => target.startsWith(folder));
        if (!allowed) found.push({ file, specifier, rule: "leaf" });
      }
    }
  }
  return found;
}

/** Every TypeScript file of the repository (not dependencies or build output). */
function repositoryFiles(): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = dir === "" ? entry.name : `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (!entry.name.startsWith(".") && !["node_modules", "dist"].includes(entry.name)) {
          walk(path);
        }
      } else if (/\.(ts|tsx|mts)$/.test(entry.name)) {
        files.set(path, readFileSync(join(ROOT, path), "utf8"));
      }
    }
  };
  walk("");
  files.delete("tests/public_surface_test.ts"); // its fixtures break the rules on purpose
  return files;
}

Deno.test("lib/cli and lib/board import only entry points, their own folder and shared leaves", () => {
  const files = repositoryFiles();
  assert.ok(files.has("lib/cli/main.ts") && files.has("lib/board/handler.ts"), "files were read");
  const found = violations(files).filter((v) => v.rule !== "private");
  assert.deepEqual(found, []);
});

Deno.test("files and folders named _x are imported only from their own folder", () => {
  const found = violations(repositoryFiles()).filter((v) => v.rule === "private");
  assert.deepEqual(found, []);
});

Deno.test("the import rules catch each kind of violation", () => {
  const files = new Map([
    // Front-ends: internals are refused, statically, dynamically, as types and in doc examples.
    ["lib/cli/commands/a.ts", `import { Admin } from "../../storage/admin.ts";`],
    ["lib/cli/b.ts", `const m = await import("../store/schema.ts");`],
    ["lib/board/c.ts", `import type {\n  TaskRecord,\n} from "../storage/records.ts";`],
    ["lib/board/pages/d.ts", `export * from "../../worker/worker.ts";`],
    ["lib/board/e.ts", `/**\n * import { ulid } from "../storage/ulid.ts";\n */`],
    ["lib/cli/f.ts", `import { join } from "jsr:@std/path";`],
    // Private files: only from their own folder.
    ["tests/cli/a_test.ts", `import { backendTest } from "../backend/_suite.ts";`],
    ["bench/b.ts", `import { Cluster } from "../tests/_pg_cluster.ts";`],
    ["lib/worker/c.ts", `import { x } from "../cli/runners/_output.ts";`],
    ["lib/worker/d.ts", `import { y } from "../store/_private/util.ts";`],
    // Shared leaves import nothing of the library.
    ["lib/format/g.ts", `import { TASK_STATUSES } from "../../mod.ts";`],
    // Allowed: entry points, own folder, shared leaves, node: and npm, a parent's private file.
    [
      "lib/cli/commands/ok.ts",
      [
        `import { SqliteStorage } from "../../../mod.ts";`,
        `import { serveBoard } from "../../../board.ts";`,
        `const pg = await import("../../../postgres.ts");`,
        `import { formatDuration } from "../../format/duration.ts";`,
        `import { sleep } from "../../time/timers.ts";`,
        `import { UsageError } from "../errors.ts";`,
        `import "./_local.ts";`,
        `import { hostname } from "node:os";`,
        `import postgres from "postgres";`,
        `import { createBoardHandler } from "@apalis/sqlite/board";`,
      ].join("\n"),
    ],
    ["tests/backend/ok_test.ts", `import { tempDb } from "../_helpers.ts";`],
    ["lib/format/ok.ts", `import { formatDuration } from "./duration.ts";`],
  ]);
  assert.deepEqual(violations(files), [
    { file: "lib/cli/commands/a.ts", specifier: "../../storage/admin.ts", rule: "front-end" },
    { file: "lib/cli/b.ts", specifier: "../store/schema.ts", rule: "front-end" },
    { file: "lib/board/c.ts", specifier: "../storage/records.ts", rule: "front-end" },
    { file: "lib/board/pages/d.ts", specifier: "../../worker/worker.ts", rule: "front-end" },
    { file: "lib/board/e.ts", specifier: "../storage/ulid.ts", rule: "front-end" },
    { file: "lib/cli/f.ts", specifier: "jsr:@std/path", rule: "front-end" },
    { file: "tests/cli/a_test.ts", specifier: "../backend/_suite.ts", rule: "private" },
    { file: "bench/b.ts", specifier: "../tests/_pg_cluster.ts", rule: "private" },
    { file: "lib/worker/c.ts", specifier: "../cli/runners/_output.ts", rule: "private" },
    { file: "lib/worker/d.ts", specifier: "../store/_private/util.ts", rule: "private" },
    { file: "lib/format/g.ts", specifier: "../../mod.ts", rule: "leaf" },
  ]);
});

/** Each entry point's exported names with their kinds, as `deno doc --json` reads them. */
async function exportedNames(): Promise<Record<string, string[]>> {
  const surface: Record<string, string[]> = {};
  for (const [name, path] of Object.entries(DENO_JSON.exports)) {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["doc", "--json", path],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.ok(output.success, `deno doc ${path} failed:\n${stderr}`);
    const doc = JSON.parse(new TextDecoder().decode(output.stdout)) as {
      nodes: Record<string, { symbols: { name: string; declarations: { kind: string }[] }[] }>;
    };
    const module = Object.entries(doc.nodes).find(([url]) =>
      relative(ROOT, fileURLToPath(url)) === normalize(path)
    );
    assert.ok(module, `deno doc ${path} has no module ${path}`);
    surface[name] = module[1].symbols
      .map((symbol) => {
        const kinds = [...new Set(symbol.declarations.map((d) => d.kind))].sort().join("+");
        return `${symbol.name} (${kinds})`;
      })
      .sort((a, b) => a.localeCompare(b, "en"));
  }
  return surface;
}

Deno.test("each entry point exports the names of tests/public_surface.json", async () => {
  const surface = await exportedNames();
  assert.ok((surface["."]?.length ?? 0) > 20, "deno doc listed the root's names");
  if (Deno.env.get("APALIS_UPDATE_SURFACE") === "1") {
    writeFileSync(SNAPSHOT, `${JSON.stringify(surface, null, 2)}\n`);
  }
  const expected = JSON.parse(readFileSync(SNAPSHOT, "utf8"));
  assert.deepEqual(
    surface,
    expected,
    "the public surface changed: if on purpose, run APALIS_UPDATE_SURFACE=1 deno test -A " +
      "tests/public_surface_test.ts and review the diff of tests/public_surface.json",
  );
});
