/**
 * A private PostgreSQL cluster for tests and scripts, with `node:` APIs only (Deno and Bun):
 * `initdb` into a temp dir (as the `postgres` user when run as root, which `initdb` refuses),
 * listening on 127.0.0.1 on a free port, its unix socket in that dir, trust authentication.
 *
 * @module
 */
import { execFile, execFileSync } from "node:child_process";
import { chownSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

/** The directory of PostgreSQL's programs, or undefined when it is not installed. */
export const POSTGRES_BIN: string | undefined = findBin();

function findBin(): string | undefined {
  const fromEnv = process.env.APALIS_POSTGRES_BIN;
  if (fromEnv) {
    try {
      statSync(`${fromEnv}/initdb`);
      return fromEnv;
    } catch {
      return undefined;
    }
  }
  let versions: number[];
  try {
    versions = readdirSync("/usr/lib/postgresql").map(Number).filter(Number.isInteger);
  } catch {
    return undefined;
  }
  for (const version of versions.sort((a, b) => b - a)) {
    const bin = `/usr/lib/postgresql/${version}/bin`;
    try {
      statSync(`${bin}/initdb`);
      return bin;
    } catch {
      // not this one
    }
  }
  return undefined;
}

/** Why PostgreSQL cannot be started here, or undefined when it can. */
export const POSTGRES_MISSING: string | undefined = POSTGRES_BIN !== undefined
  ? undefined
  : process.env.APALIS_POSTGRES_BIN
  ? `APALIS_POSTGRES_BIN (${process.env.APALIS_POSTGRES_BIN}) has no initdb`
  : "PostgreSQL is not installed (apt-get install postgresql, or set APALIS_POSTGRES_BIN)";

const IS_ROOT = typeof process.getuid === "function" && process.getuid() === 0;

function command(program: string, args: string[]): [string, string[]] {
  if (POSTGRES_BIN === undefined) throw new Error(POSTGRES_MISSING);
  const path = `${POSTGRES_BIN}/${program}`;
  return IS_ROOT ? ["runuser", ["-u", "postgres", "--", path, ...args]] : [path, args];
}

/** Runs a PostgreSQL program (as `postgres` when root); rejects with its output on failure. */
function runPg(program: string, args: string[], what: string): Promise<string> {
  const [file, argv] = command(program, args);
  return new Promise((resolve, reject) => {
    execFile(file, argv, { encoding: "utf8" }, (error, stdout, stderr) => {
      if (error) reject(new Error(`Cannot ${what}: ${program} failed: ${stdout}${stderr}`));
      else resolve(stdout + stderr);
    });
  });
}

/** A free TCP port on 127.0.0.1. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/** A running private cluster. */
export class Cluster {
  readonly dir: string;
  readonly port: number;
  readonly #options: string;

  private constructor(dir: string, port: number, options: string) {
    this.dir = dir;
    this.port = port;
    this.#options = options;
  }

  /**
   * initdb + start. `durable: false` (tests) turns fsync off; `settings` are more server
   * options (`-c name=value`).
   */
  static async start(
    options: { durable?: boolean; settings?: Record<string, string> } = {},
  ): Promise<Cluster> {
    const dir = mkdtempSync(join(tmpdir(), "apalis_pg_"));
    try {
      return await Cluster.#init(dir, options);
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }

  static async #init(
    dir: string,
    options: { durable?: boolean; settings?: Record<string, string> },
  ): Promise<Cluster> {
    if (IS_ROOT) {
      const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
      chownSync(dir, uid, -1 as number);
    }
    await runPg(
      "initdb",
      ["-D", `${dir}/data`, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"],
      "create a PostgreSQL cluster",
    );
    const settings: Record<string, string> = {
      listen_addresses: "127.0.0.1",
      unix_socket_directories: dir,
      max_connections: "300",
      ...(options.durable === false
        ? { fsync: "off", synchronous_commit: "off", full_page_writes: "off" }
        : {}),
      ...options.settings,
    };
    const port = await freePort();
    settings.port = String(port);
    const flags = Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`).join(" ");
    const cluster = new Cluster(dir, port, flags);
    await cluster.#ctl("start");
    return cluster;
  }

  #ctl(action: "start" | "stop" | "restart"): Promise<string> {
    const args = [action, "-D", `${this.dir}/data`, "-w", "-t", "60", "-l", `${this.dir}/log`];
    if (action !== "stop") args.push("-o", this.#options);
    if (action !== "start") args.push("-m", "fast");
    return runPg("pg_ctl", args, `${action} the PostgreSQL cluster`);
  }

  /** The URL of database `name`. */
  url(name = "postgres"): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${name}`;
  }

  /** `psql -c sql` on database `name` (as the postgres superuser). */
  psql(sql: string, name = "postgres"): Promise<string> {
    return runPg(
      "psql",
      ["-h", "127.0.0.1", "-p", String(this.port), "-U", "postgres", "-d", name, "-XAtqc", sql],
      "run psql",
    );
  }

  /** `pg_ctl restart -m fast`: every connection is closed, the server comes back. */
  async restart(): Promise<void> {
    await this.#ctl("restart");
  }

  /** Stops the server (fast shutdown); {@linkcode Cluster.resume} starts it again. */
  async stop(): Promise<void> {
    await this.#ctl("stop");
  }

  /** Starts it again after {@linkcode Cluster.stop}. */
  async resume(): Promise<void> {
    await this.#ctl("start");
  }

  /** Stops the server at once and removes its files, synchronously (at process exit). */
  destroySync(): void {
    try {
      const [file, argv] = command("pg_ctl", ["stop", "-D", `${this.dir}/data`, "-m", "immediate"]);
      execFileSync(file, argv, { stdio: "ignore" });
    } catch {
      // already stopped
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
