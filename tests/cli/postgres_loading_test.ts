/**
 * The CLI loads the PostgreSQL client only for a postgres:// URL: cli.ts reaches `postgres.ts`
 * (and through it the `postgres` package) by one dynamic import whose specifier is a literal,
 * which `bun build --compile` and `deno compile` bundle, and by no static import, which every
 * SQLite command would pay for.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = new URL("../../", import.meta.url);

interface ModuleInfo {
  specifier: string;
  dependencies?: {
    specifier: string;
    code?: { specifier: string };
    isDynamic?: boolean;
  }[];
}

Deno.test("cli.ts imports the PostgreSQL client only dynamically, through postgres.ts, with a literal specifier", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "cli.ts"],
    cwd: fileURLToPath(ROOT),
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  const graph: { roots: string[]; modules: ModuleInfo[] } = JSON.parse(
    new TextDecoder().decode(output.stdout),
  );
  const modules = new Map(graph.modules.map((module) => [module.specifier, module]));
  const entry = new URL("postgres.ts", ROOT).href;

  // Every module cli.ts loads at start: its static imports, transitively.
  const loaded = new Set<string>();
  const dynamic: [string, string][] = [];
  const visit = (specifier: string) => {
    if (loaded.has(specifier)) return;
    loaded.add(specifier);
    for (const dependency of modules.get(specifier)?.dependencies ?? []) {
      const target = dependency.code?.specifier;
      if (target === undefined) continue; // a type-only import
      if (dependency.isDynamic) dynamic.push([specifier, target]);
      else visit(target);
    }
  };
  visit(graph.roots[0]!);

  const client = [...loaded].filter((specifier) =>
    specifier === entry || /npm:.*postgres/.test(specifier) ||
    /\/lib\/postgres\/(?!url\.ts$)/.test(specifier)
  );
  assert.deepEqual(client, [], "no static path from cli.ts to the PostgreSQL client");
  assert.ok(loaded.has(new URL("lib/cli/postgres_database.ts", ROOT).href));
  assert.deepEqual(
    dynamic.filter(([, target]) => target === entry),
    [[new URL("lib/cli/postgres_database.ts", ROOT).href, entry]],
    "one dynamic import of postgres.ts, resolved at build time",
  );
});
