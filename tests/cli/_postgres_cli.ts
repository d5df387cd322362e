/**
 * Helpers for the CLI's tests on PostgreSQL: run a command in-process against a URL, and take a
 * fingerprint of everything a database holds, to show that a command wrote nothing.
 *
 * @module
 */
import type { PostgresConnection } from "../../postgres.ts";
import { captureIo, main } from "../../lib/cli/mod.ts";

/** How a command ended and what it printed. */
export interface CliRun {
  code: number;
  out: string;
  err: string;
}

/** Runs `apalis ...args` in-process with `$APALIS_DB` set to `url` (and `stdin` as its input). */
export async function cli(
  url: string,
  args: string[],
  options: { stdin?: string; env?: Record<string, string> } = {},
): Promise<CliRun> {
  const io = captureIo({
    env: { APALIS_DB: url, PATH: Deno.env.get("PATH"), ...options.env },
    ...(options.stdin === undefined ? {} : { stdin: options.stdin }),
  });
  const code = await main(args, io);
  return { code, out: io.out, err: io.err };
}

/** `url` with a password, which the tests' clusters (trust authentication) ignore. */
export function withPassword(url: string, password = "s3cret-pw"): string {
  return url.replace("://postgres@", `://postgres:${password}@`);
}

/**
 * Every relation and function of the database's public schema, and every row of each table and
 * sequence, as one string: equal before and after a command when it wrote nothing.
 */
export async function fingerprint(pg: PostgresConnection): Promise<string> {
  const { sql } = pg;
  const relations = await sql<{ name: string; kind: string }[]>`
    SELECT c.relname AS name, c.relkind AS kind FROM pg_class AS c
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' ORDER BY c.relname`;
  const functions = await sql<{ name: string }[]>`
    SELECT p.proname AS name FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public' ORDER BY p.proname`;
  const rows: Record<string, unknown> = {};
  for (const { name, kind } of relations) {
    if (kind === "S") {
      rows[name] = await sql`SELECT last_value, is_called FROM ${sql(name)}`;
    } else if (kind === "r") {
      const [result] = await sql<{ rows: string }[]>`
        SELECT coalesce(json_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]')::text AS rows
        FROM ${sql(name)} AS t`;
      rows[name] = JSON.parse(result!.rows);
    }
  }
  return JSON.stringify({ relations, functions, rows }, null, 1);
}

/** The names of the database's tables in the public schema. */
export async function tableNames(pg: PostgresConnection): Promise<string[]> {
  const rows = await pg.sql<{ name: string }[]>`
    SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`;
  return rows.map((row) => row.name);
}
