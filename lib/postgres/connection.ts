/**
 * The PostgreSQL connection: one `postgres` (porsager's postgres.js) pool per handle, with the
 * settings the queue relies on (bigint columns read as numbers, no notices on the console).
 *
 * @module
 */
import postgres, { type Sql } from "postgres";
import { isPostgresUrl, redactUrl } from "../format/postgres_url.ts";

export { redactUrl };

/** Options of {@linkcode connectPostgres}. */
export interface ConnectPostgresOptions {
  /** Most connections the pool opens (a worker's flush uses one at a time). @default {10} */
  max?: number;
  /** Seconds to wait for a connection to open before an operation fails. @default {10} */
  connectTimeoutSeconds?: number;
  /** The `application_name` the server shows in `pg_stat_activity`. @default {"apalis"} */
  applicationName?: string;
  /** TLS: `true`, `"require"`, `"prefer"`, `"verify-full"` or Node's `tls.connect` options. */
  ssl?: boolean | "require" | "allow" | "prefer" | "verify-full" | Record<string, unknown>;
  /**
   * Open every session read-only (`default_transaction_read_only`): any statement that would
   * write fails (SQLSTATE 25006) instead of writing. For tools that only look (the CLI's `ls`,
   * `stats`, ...); it also lets them read from a hot standby. A worker or a push needs `false`.
   * @default {false}
   */
  readOnly?: boolean;
}

/**
 * An open PostgreSQL pool for the queue, made by {@linkcode connectPostgres}. Storages, admins
 * and workers on one connection share its pool and its wake-ups. `sql` is the postgres.js
 * client: use `pg.sql.begin(async (tx) => …)` for your own transactions (see
 * `PostgresStorage.pushTx`). It reads `bigint` columns as JavaScript numbers.
 */
export class PostgresConnection {
  /** The postgres.js client (a pool). */
  readonly sql: Sql;
  /** The server and database, without the password (for messages). */
  readonly location: string;
  #closed = false;

  /** @internal Use {@linkcode connectPostgres}. */
  constructor(sql: Sql, location: string) {
    this.sql = sql;
    this.location = location;
  }

  /** Whether {@linkcode PostgresConnection.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Closes the pool once the queries in flight are answered (waiting at most 5 s). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.sql.end({ timeout: 5 });
  }
}

/** Bigint columns (times in epoch ms, counts) as numbers: every value the queue stores fits. */
const BIGINT_AS_NUMBER = {
  to: 20,
  from: [20],
  serialize: (value: number | bigint) => String(value),
  parse: (text: string) => Number(text),
};

/**
 * Opens a pool to the PostgreSQL database at `url` and checks that it answers. Rejects with a
 * {@linkcode PostgresOperationError} naming the server when it cannot connect.
 *
 * @example Usage
 * ```ts ignore
 * import { connectPostgres, PostgresStorage } from "@apalis/sqlite/postgres";
 *
 * const pg = await connectPostgres("postgres://app@localhost:5432/app", { max: 10 });
 * await PostgresStorage.setup(pg);
 * await pg.close();
 * ```
 */
export async function connectPostgres(
  url: string,
  options: ConnectPostgresOptions = {},
): Promise<PostgresConnection> {
  const location = redactUrl(url);
  if (typeof url !== "string" || !isPostgresUrl(url)) {
    throw new TypeError(
      `Cannot connect to PostgreSQL as 'url' must start with postgres:// or postgresql://: current value is ${
        JSON.stringify(location)
      }`,
    );
  }
  const { max = 10, connectTimeoutSeconds = 10, applicationName = "apalis" } = options;
  if (!Number.isSafeInteger(max) || max < 1) {
    throw new RangeError(
      `Cannot connect to PostgreSQL as 'max' must be an integer >= 1: current value is ${max}`,
    );
  }
  const sql = postgres(url, {
    max,
    connect_timeout: connectTimeoutSeconds,
    // Reconnect soon after the server is back (the client's default backoff grows to 20 s).
    backoff: (attempt: number) => Math.min(0.05 * 2 ** attempt, 2) * (0.5 + Math.random() / 2),
    onnotice: () => {},
    types: { bigint: BIGINT_AS_NUMBER },
    connection: {
      application_name: applicationName,
      ...(options.readOnly ? { default_transaction_read_only: "on" } : {}),
    },
    ...(options.ssl === undefined ? {} : { ssl: options.ssl as never }),
  } as never) as unknown as Sql;
  try {
    await sql`SELECT 1`;
  } catch (error) {
    await sql.end({ timeout: 0 }).catch(() => {});
    throw new PostgresOperationError("connect", location, error);
  }
  return new PostgresConnection(sql, location);
}

/**
 * Thrown by PostgreSQL operations: names what was attempted and the server, and why it failed
 * (the server's error, with its SQLSTATE `code`, or the connection's). Nothing of the failed
 * operation was written, except when the connection dropped while it committed: then it may have
 * been (the queue's own writes are fenced so that doing them again is harmless).
 */
export class PostgresOperationError extends Error {
  /** The SQLSTATE (e.g. `"53100"` for a full disk) or the connection error's code. */
  readonly code: string | undefined;
  /** What was attempted. */
  readonly action: string;

  /**
   * @param action what was attempted, e.g. `"push task to queue 'email'"`
   * @param location the server (see {@linkcode PostgresConnection.location})
   * @param cause the client's or the server's error
   */
  constructor(action: string, location: string, cause: unknown) {
    super(
      `Cannot ${action} on PostgreSQL at ${location}: ${describeCause(cause)}`,
      { cause },
    );
    this.name = "PostgresOperationError";
    this.action = action;
    this.code = codeOf(cause);
  }
}

/** The SQLSTATE or connection error code of `error`, looking through wrappers. */
export function codeOf(error: unknown): string | undefined {
  for (let e = error, depth = 0; e && typeof e === "object" && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Whether `error` came from the server (it has a SQLSTATE: five characters). */
export function isServerError(error: unknown): boolean {
  return error instanceof postgres.PostgresError;
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    const message = cause.message || cause.name;
    return typeof code === "string" && !message.includes(code) ? `${message} (${code})` : message;
  }
  return String(cause);
}
