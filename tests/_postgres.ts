/**
 * A private PostgreSQL cluster for the tests: `initdb` into a temp dir (as the `postgres` user
 * when the tests run as root, which `initdb` refuses), listening on 127.0.0.1 on a free port with
 * its unix socket in that dir, trust authentication. One cluster per test process, started on
 * first use and stopped when the process exits; a fresh database per test.
 *
 * Without PostgreSQL (no `initdb` under /usr/lib/postgresql/N/bin, or `APALIS_POSTGRES_BIN`),
 * {@linkcode pgTest} registers each test as ignored, its name saying why, unless
 * `APALIS_POSTGRES_TEST=required` (CI), where they fail instead.
 *
 * @module
 */
import { connectPostgres, type PostgresConnection, PostgresStorage } from "../postgres.ts";
import { Cluster, POSTGRES_MISSING } from "./pg_cluster.ts";

const REQUIRED = Deno.env.get("APALIS_POSTGRES_TEST") === "required";

export { Cluster, POSTGRES_MISSING };

/**
 * Registers a test that needs PostgreSQL: ignored (with the reason in its name) when PostgreSQL
 * is missing, unless `APALIS_POSTGRES_TEST=required`.
 */
export function pgTest(name: string, fn: (t: Deno.TestContext) => Promise<void>): void {
  if (POSTGRES_MISSING !== undefined && !REQUIRED) {
    Deno.test({ name: `${name} (skipped: ${POSTGRES_MISSING})`, ignore: true, fn });
    return;
  }
  Deno.test(name, fn);
}

let databases = 0;

/** Creates a fresh database on `cluster`; returns its URL. */
export async function createDatabase(cluster: Cluster): Promise<string> {
  const name = `t${Deno.pid}_${++databases}`;
  await cluster.psql(`CREATE DATABASE "${name}"`);
  return cluster.url(name);
}

let shared: Promise<Cluster> | undefined;

/** This process's cluster, started on first use and destroyed when the process exits. */
export function sharedCluster(): Promise<Cluster> {
  if (!shared) {
    shared = Cluster.start({ durable: false });
    shared.then((cluster) => {
      globalThis.addEventListener("unload", () => cluster.destroySync());
    }, () => {});
  }
  return shared;
}

/** A fresh database on this process's cluster, set up, with a connection to it. */
export interface TempPostgres extends AsyncDisposable {
  cluster: Cluster;
  url: string;
  pg: PostgresConnection;
}

/** A fresh, set-up database and a connection to it; disposing closes the connection. */
export async function tempPostgres(
  options: { setup?: boolean; max?: number } = {},
): Promise<TempPostgres> {
  const cluster = await sharedCluster();
  const url = await createDatabase(cluster);
  const pg = await connectPostgres(url, { max: options.max ?? 10 });
  if (options.setup !== false) await PostgresStorage.setup(pg);
  return {
    cluster,
    url,
    pg,
    async [Symbol.asyncDispose]() {
      await pg.close();
    },
  };
}
