/**
 * The backends the conformance suite runs against, each behind one factory. The suite reaches a
 * database only through the engine-neutral API these hand out (`Storage`, `Admin`), never through
 * SQL, so that every behaviour it checks holds on every engine.
 *
 * Adding a backend is one entry in {@linkcode BACKENDS}: a {@linkcode BackendUnderTest} whose
 * `fresh()` makes an empty, set-up database and whose `open()` reaches an existing one by its
 * `location` (what a child process is given on its command line).
 *
 * @module
 */
import {
  type Admin,
  type AdminOptions,
  type Config,
  openDatabase,
  SqliteStorage,
  type Storage,
  type StorageOptions,
} from "../../mod.ts";
import { postgresBackends } from "./_postgres_slot.ts";

/** A connection to a database under test, through the public, engine-neutral API only. */
export interface TestConnection {
  /** A queue on this connection (`SqliteStorage`, `PostgresStorage`, …). */
  storage<T = unknown>(queue: string | Config, options?: StorageOptions): Storage<T>;
  /** The database-wide view (queues, workers, runs, repairs) on this connection. */
  admin(options?: AdminOptions): Admin;
  /** Closes this connection (idempotent). */
  close(): Promise<void>;
}

/** A fresh database of one backend, for one test. */
export interface TestDatabase extends TestConnection, AsyncDisposable {
  /** The backend's name, as in test names (`sqlite`, `postgres`). */
  readonly backend: string;
  /**
   * How another process opens this database: a file path for SQLite, a `postgres://` URL for
   * PostgreSQL. `worker_child.ts --location` takes it.
   */
  readonly location: string;
  /** Another connection to the same database, as a restarted process would open it. */
  connect(): Promise<TestConnection>;
}

/** One backend of the suite. */
export interface BackendUnderTest {
  /** Short name, the prefix of every test name: `[sqlite] …`. */
  readonly name: string;
  /** Why the backend cannot run here (no server, no client), if so; its tests are then ignored. */
  readonly unavailable?: string;
  /** An empty database, set up, that disposing removes. */
  fresh(): Promise<TestDatabase>;
  /** Whether `location` is one of this backend's (a file path; a `postgres://` URL). */
  owns(location: string): boolean;
  /** Opens an existing, set-up database by its location (what a child process does). */
  open(location: string): Promise<TestConnection>;
}

/** SQLite: a file in a temp dir per test, opened with `openDatabase`, queues as `SqliteStorage`. */
export const sqliteBackend: BackendUnderTest = {
  name: "sqlite",
  async fresh(): Promise<TestDatabase> {
    const dir = await Deno.makeTempDir({ prefix: "apalis_backend_" });
    const path = `${dir}/queue.db`;
    const main = openSqlite(path, true);
    const others: TestConnection[] = [];
    return {
      ...main,
      backend: "sqlite",
      location: path,
      connect() {
        const other = openSqlite(path, false);
        others.push(other);
        return Promise.resolve(other);
      },
      async [Symbol.asyncDispose]() {
        for (const other of others) await other.close();
        await main.close();
        await Deno.remove(dir, { recursive: true });
      },
    };
  },
  owns: (location) => !/^[a-z][a-z0-9+.-]*:\/\//i.test(location),
  open: (location) => Promise.resolve(openSqlite(location, false)),
};

function openSqlite(path: string, setup: boolean): TestConnection {
  const db = openDatabase(path);
  if (setup) SqliteStorage.setup(db);
  return {
    storage: <T>(queue: string | Config, options?: StorageOptions) =>
      new SqliteStorage<T>(db, queue, options),
    admin: (options?: AdminOptions) => SqliteStorage.admin(db, options),
    close: () => Promise.resolve(db.close()),
  };
}

/**
 * Every backend of the suite: SQLite always; PostgreSQL from its own slot (see
 * `_postgres_slot.ts`), unavailable when no server is reachable.
 */
export const BACKENDS: readonly BackendUnderTest[] = [sqliteBackend, ...(await postgresBackends())];

/**
 * Opens a database by its location, whatever its backend: the one place where a child process
 * turns `--location` into a connection.
 */
export function openLocation(location: string): Promise<TestConnection> {
  const backend = BACKENDS.find((candidate) => !candidate.unavailable && candidate.owns(location));
  if (!backend) {
    throw new TypeError(
      `Cannot open '${location}': no available backend under test owns it (${
        BACKENDS.map((b) => b.unavailable ? `${b.name}: ${b.unavailable}` : b.name).join("; ")
      })`,
    );
  }
  return backend.open(location);
}
