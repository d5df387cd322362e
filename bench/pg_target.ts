/**
 * The benchmark on PostgreSQL: its own private cluster (`tests/pg_cluster.ts`: initdb into a
 * temp dir, 127.0.0.1 on a free port, fsync and synchronous_commit on, the server's other
 * settings at their defaults), a fresh database per scenario, and the way a child process opens
 * one again. Loaded only by `--backend postgres`: the SQLite benchmark never loads a PostgreSQL
 * client.
 *
 * @module
 */
import process from "node:process";
import type { Sql } from "postgres";
import {
  connectPostgres,
  PostgresBackend,
  type PostgresConnection,
  PostgresStorage,
} from "../postgres.ts";
import { Cluster, POSTGRES_MISSING } from "../tests/pg_cluster.ts";
import { QUEUE } from "./_shared.ts";
import type { BenchConnection, BenchTarget } from "./_target.ts";
import { pgRawDrain, rawClient } from "./pg_ceiling.ts";

/** A fresh database on the server; disposing drops it. */
export interface CreatedDatabase extends AsyncDisposable {
  url: string;
}

/**
 * A PostgreSQL server the benchmark makes databases on, known by the URL of any database on it
 * (a child process gets the URL of the database it works on and makes its warm-up databases on
 * the same server).
 */
export class PostgresServer {
  readonly #url: URL;
  #admin: Sql | undefined;
  #created = 0;

  /** @param url the URL of a database on the server (its user must be allowed CREATE DATABASE) */
  constructor(url: string) {
    this.#url = new URL(url);
  }

  /** The URL of database `name` on this server. */
  databaseUrl(name: string): string {
    const url = new URL(this.#url);
    url.pathname = `/${name}`;
    return url.toString();
  }

  /** A connection to the server's `postgres` database, for CREATE and DROP DATABASE. */
  #adminClient(): Sql {
    return this.#admin ??= rawClient(this.databaseUrl("postgres"));
  }

  /** Creates an empty database (named after this process); disposing drops it. */
  async createDatabase(): Promise<CreatedDatabase> {
    const name = `bench_${process.pid}_${++this.#created}`;
    const admin = this.#adminClient();
    await admin.unsafe(`CREATE DATABASE ${name}`);
    return {
      url: this.databaseUrl(name),
      async [Symbol.asyncDispose]() {
        await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      },
    };
  }

  /** The server's version and the settings that decide its speed, for the report. */
  async describe(): Promise<string> {
    const [row] = await this.#adminClient()<
      { version: string; fsync: string; sync: string; buffers: string }[]
    >`SELECT current_setting('server_version') AS version, current_setting('fsync') AS fsync,
        current_setting('synchronous_commit') AS sync,
        current_setting('shared_buffers') AS buffers`;
    const version = row!.version.split(" ")[0];
    return `PostgreSQL ${version} (private cluster on 127.0.0.1: fsync ${row!.fsync}, ` +
      `synchronous_commit ${row!.sync}, shared_buffers ${row!.buffers})`;
  }

  /** Closes the admin connection. */
  async close(): Promise<void> {
    await this.#admin?.end({ timeout: 5 });
    this.#admin = undefined;
  }
}

/** Storages on `pg`, and how to close it (its wake-ups' LISTEN connection included). */
function connection(pg: PostgresConnection): BenchConnection {
  return {
    storage: <T>(queue = QUEUE) => new PostgresStorage<T>(pg, queue),
    close: () => PostgresBackend.of(pg).close(),
  };
}

/** The benchmark's target on `server`: each fresh database set up with `PostgresStorage.setup`. */
export function postgresTarget(server: PostgresServer): BenchTarget {
  return {
    backend: "postgres",
    durability: "full",
    async fresh() {
      const db = await server.createDatabase();
      let pg: PostgresConnection | undefined;
      try {
        pg = await connectPostgres(db.url);
        await PostgresStorage.setup(pg);
      } catch (error) {
        await pg?.close();
        await db[Symbol.asyncDispose]();
        throw error;
      }
      const { storage, close } = connection(pg);
      return {
        location: db.url,
        storage,
        async [Symbol.asyncDispose]() {
          await close();
          await db[Symbol.asyncDispose]();
        },
      };
    },
    async open(location) {
      return connection(await connectPostgres(location));
    },
    childFlags: ["--backend", "postgres"],
    raw: pgRawDrain(server),
  };
}

/** The benchmark's own cluster, running, and its target. */
export interface PostgresBench extends AsyncDisposable {
  server: PostgresServer;
  target: BenchTarget;
  /** The server's version and settings, for the report. */
  description: string;
}

/**
 * Starts a private cluster with fsync on (in the temp dir; as the `postgres` user when run as
 * root). Disposing stops it and removes its files; so does the end of this process, or SIGINT
 * or SIGTERM, should the benchmark not get that far. Rejects when PostgreSQL is not installed.
 */
export async function startPostgresBench(): Promise<PostgresBench> {
  if (POSTGRES_MISSING !== undefined) {
    throw new Error(`Cannot run the benchmark on PostgreSQL: ${POSTGRES_MISSING}`);
  }
  const cluster = await Cluster.start({ durable: true });
  const destroy = () => cluster.destroySync();
  const interrupted = (signal: string) => {
    destroy();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.on("exit", destroy);
  process.on("SIGINT", interrupted);
  process.on("SIGTERM", interrupted);
  const server = new PostgresServer(cluster.url());
  const stop = async () => {
    await server.close();
    process.off("SIGINT", interrupted);
    process.off("SIGTERM", interrupted);
    process.off("exit", destroy);
    destroy();
  };
  try {
    return {
      server,
      target: postgresTarget(server),
      description: await server.describe(),
      [Symbol.asyncDispose]: stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
