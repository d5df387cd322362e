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

const REQUIRED = Deno.env.get("APALIS_POSTGRES_TEST") === "required";

/** The directory of PostgreSQL's programs, or undefined when it is not installed. */
export const POSTGRES_BIN: string | undefined = findBin();

function findBin(): string | undefined {
  const fromEnv = Deno.env.get("APALIS_POSTGRES_BIN");
  if (fromEnv) return fromEnv;
  try {
    const versions = [...Deno.readDirSync("/usr/lib/postgresql")]
      .map((entry) => Number(entry.name))
      .filter((n) => Number.isInteger(n))
      .sort((a, b) => b - a);
    for (const version of versions) {
      const bin = `/usr/lib/postgresql/${version}/bin`;
      try {
        Deno.statSync(`${bin}/initdb`);
        return bin;
      } catch {
        // not this one
      }
    }
  } catch {
    // no /usr/lib/postgresql
  }
  return undefined;
}

/** Why PostgreSQL tests cannot run here, or undefined when they can. */
export const POSTGRES_MISSING: string | undefined = POSTGRES_BIN === undefined
  ? "PostgreSQL is not installed (apt-get install postgresql, or set APALIS_POSTGRES_BIN)"
  : undefined;

/**
 * Registers a test that needs PostgreSQL: ignored (with the reason in its name) when PostgreSQL
 * is missing, unless `APALIS_POSTGRES_TEST=required`.
 */
export function pgTest(name: string, fn: (t: Deno.TestContext) => Promise<void>): void {
  if (POSTGRES_MISSING !== undefined && !REQUIRED) {
    Deno.test({ name: `${name} (skipped: ${POSTGRES_MISSING})`, ignore: true, fn });
    return;
  }
  Deno.test({ name, fn, sanitizeOps: true, sanitizeResources: true });
}

const IS_ROOT = Deno.uid() === 0;

/** Runs a PostgreSQL program, as the `postgres` user when we are root. */
async function runPg(program: string, args: string[], what: string): Promise<string> {
  if (POSTGRES_BIN === undefined) throw new Error(`Cannot ${what}: ${POSTGRES_MISSING}`);
  const command = IS_ROOT
    ? new Deno.Command("runuser", {
      args: ["-u", "postgres", "--", `${POSTGRES_BIN}/${program}`, ...args],
      stdin: "null",
    })
    : new Deno.Command(`${POSTGRES_BIN}/${program}`, { args, stdin: "null" });
  const out = await command.output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`Cannot ${what}: ${program} exited ${out.code}: ${text}`);
  return text;
}

/** A free TCP port on 127.0.0.1 (the OS picks it; the cluster binds it right after). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A running private cluster. */
export class Cluster {
  readonly dir: string;
  readonly port: number;
  #databases = 0;

  private constructor(dir: string, port: number) {
    this.dir = dir;
    this.port = port;
  }

  /** initdb + start, with `settings` as `-c name=value` server options. */
  static async start(settings: Record<string, string> = {}): Promise<Cluster> {
    const dir = await Deno.makeTempDir({ prefix: "apalis_pg_" });
    if (IS_ROOT) {
      const id = await new Deno.Command("id", { args: ["-u", "postgres"] }).output();
      await Deno.chown(dir, Number(new TextDecoder().decode(id.stdout).trim()), null);
    }
    await runPg(
      "initdb",
      ["-D", `${dir}/data`, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"],
      "create a PostgreSQL cluster",
    );
    const cluster = new Cluster(dir, freePort());
    const options = {
      listen_addresses: "127.0.0.1",
      port: String(cluster.port),
      unix_socket_directories: dir,
      max_connections: "300",
      fsync: "off",
      synchronous_commit: "off",
      full_page_writes: "off",
      ...settings,
    };
    cluster.#options = Object.entries(options).map(([k, v]) => `-c ${k}=${v}`).join(" ");
    await cluster.#ctl("start");
    return cluster;
  }

  #options = "";

  async #ctl(action: "start" | "stop" | "restart"): Promise<void> {
    const args = ["-D", `${this.dir}/data`, "-w", "-t", "60", "-l", `${this.dir}/log`];
    if (action !== "stop") args.push("-o", this.#options);
    if (action !== "start") args.push("-m", "fast");
    await runPg("pg_ctl", [action, ...args], `${action} the PostgreSQL cluster`);
  }

  /** The URL of database `name`. */
  url(name = "postgres"): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${name}`;
  }

  /** Creates a fresh database; returns its URL. */
  async createDatabase(): Promise<string> {
    const name = `t${Deno.pid}_${++this.#databases}_${Math.random().toString(36).slice(2, 8)}`;
    const admin = await connectPostgres(this.url(), { max: 1 });
    try {
      await admin.sql.unsafe(`CREATE DATABASE "${name}"`);
    } finally {
      await admin.close();
    }
    return this.url(name);
  }

  /** `pg_ctl restart -m fast`: every connection is closed, the server comes back. */
  restart(): Promise<void> {
    return this.#ctl("restart");
  }

  /** Stops the server (fast shutdown). */
  stop(): Promise<void> {
    return this.#ctl("stop");
  }

  /** Starts it again after {@linkcode Cluster.stop}. */
  resume(): Promise<void> {
    return this.#ctl("start");
  }

  /** Stops the server and removes its files, synchronously (for process exit). */
  destroySync(): void {
    try {
      const args = ["stop", "-D", `${this.dir}/data`, "-m", "immediate", "-w"];
      if (IS_ROOT) {
        new Deno.Command("runuser", {
          args: ["-u", "postgres", "--", `${POSTGRES_BIN}/pg_ctl`, ...args],
          stdout: "null",
          stderr: "null",
        }).outputSync();
      } else {
        new Deno.Command(`${POSTGRES_BIN}/pg_ctl`, { args, stdout: "null", stderr: "null" })
          .outputSync();
      }
    } finally {
      Deno.removeSync(this.dir, { recursive: true });
    }
  }
}

let shared: Promise<Cluster> | undefined;

/** This process's cluster, started on first use and destroyed when the process exits. */
export function sharedCluster(): Promise<Cluster> {
  if (!shared) {
    shared = Cluster.start();
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
  const url = await cluster.createDatabase();
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
