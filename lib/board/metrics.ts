/**
 * Prometheus metrics of every queue: as text, and as a `fetch` handler to mount in any server
 * (the dashboard serves the same at `/metrics`).
 *
 * @module
 */
import { Admin, type Database, SqliteStorage, systemClock } from "../../mod.ts";
import { BoardAuth, DEFAULT_SESSION_MS } from "./auth.ts";
import { formatMetrics, PROMETHEUS_CONTENT_TYPE } from "./prometheus.ts";

/**
 * Every queue's metrics in the Prometheus text format (version 0.0.4), read from `database` (a
 * SQLite connection, or any `Admin`: `PostgresStorage.admin(pg)` for PostgreSQL). Metric names
 * start with `apalis_`, each series has a `queue` label:
 * - `apalis_tasks{state}` (gauge): tasks per state;
 * - `apalis_tasks_succeeded_total`, `apalis_tasks_failed_total` (failed attempts, retried),
 *   `apalis_tasks_killed_total` (counters): outcomes since the database was set up, from the
 *   persisted per-minute counts; vacuum keeps them (deleted minutes are folded into totals), so
 *   they never decrease;
 * - `apalis_task_run_seconds`, `apalis_task_wait_seconds` (histograms, 5 ms to 1 h): run time
 *   (claim to end) and wait time (due to claim) of the queue's 1000 newest done tasks: a sample
 *   that moves, read it with `histogram_quantile()` directly, without `rate()`;
 * - `apalis_workers_alive`, `apalis_oldest_pending_task_age_seconds`, `apalis_queue_paused`
 *   (gauges).
 *
 * It counts every task of every queue (as the dashboard's overview does): about 0.1 s per
 * million tasks on SQLite.
 *
 * @example Usage
 * ```ts
 * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
 * import { renderMetrics } from "@apalis/sqlite/board";
 *
 * const db = openDatabase(":memory:");
 * SqliteStorage.setup(db);
 * await new SqliteStorage(db, "email").push({ to: "a@b.c" });
 * const text = await renderMetrics(db);
 * if (!text.includes('apalis_tasks{queue="email",state="pending"} 1\n')) throw new Error("unexpected");
 * db.close();
 * ```
 */
export async function renderMetrics(database: Database | Admin): Promise<string> {
  const admin = database instanceof Admin ? database : SqliteStorage.admin(database);
  return formatMetrics(await admin.metrics());
}

/** Options of {@linkcode createMetricsHandler}. */
export interface MetricsHandlerOptions {
  /**
   * Require this token as `Authorization: Bearer <token>` (Prometheus: `authorization:
   * { credentials: <token> }` in the scrape config). Wrong tokens are counted per client address
   * and answered 429 after 5 tries, as on the dashboard.
   */
  token?: string;
}

/**
 * A `fetch` handler that answers GET (and HEAD) with {@linkcode renderMetrics}, to mount at a
 * path of your own server (it answers whatever path it is given; any other method gets 405).
 * `info` is what the server knows of the request, as for the dashboard's handler: `Deno.serve`
 * passes its `remoteAddr`, by which wrong tokens are counted.
 *
 * @example Serve metrics next to your application
 * ```ts
 * import { createMetricsHandler } from "@apalis/sqlite/board";
 * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
 *
 * const db = openDatabase(":memory:");
 * SqliteStorage.setup(db);
 * const metrics = createMetricsHandler(db, { token: "s3cret" });
 * const ok = await metrics(
 *   new Request("http://localhost/metrics", { headers: { Authorization: "Bearer s3cret" } }),
 * );
 * const refused = await metrics(new Request("http://localhost/metrics"));
 * if (ok.status !== 200 || refused.status !== 401) throw new Error("unexpected");
 * db.close();
 * ```
 */
export function createMetricsHandler(
  database: Database | Admin,
  options: MetricsHandlerOptions = {},
): (req: Request, info?: unknown) => Promise<Response> {
  if (options.token !== undefined && options.token.trim() === "") {
    throw new TypeError("Cannot create the metrics handler: 'token' must not be empty when given");
  }
  const admin = database instanceof Admin ? database : SqliteStorage.admin(database);
  const auth = options.token === undefined ? undefined : new BoardAuth(options.token, {
    path: "/",
    sessionMs: DEFAULT_SESSION_MS,
    clock: systemClock,
  });
  return async (req, info) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      return plain(405, `${req.method} is not allowed: metrics are read with GET\n`, {
        Allow: "GET, HEAD",
      });
    }
    if (auth) {
      const verdict = await auth.allows(req, clientAddress(info));
      if (!verdict.ok && verdict.waitMs > 0) {
        return plain(429, "Too many failed attempts from your address\n", {
          "Retry-After": String(Math.ceil(verdict.waitMs / 1000)),
        });
      }
      if (!verdict.ok) {
        return plain(401, "A token is required (Authorization: Bearer <token>)\n", {
          "WWW-Authenticate": 'Bearer realm="apalis metrics"',
        });
      }
    }
    return metricsResponse(req, await renderMetrics(admin));
  };
}

/** A response carrying metrics text (no body for HEAD). */
export function metricsResponse(req: Request, text: string): Response {
  return new Response(req.method === "HEAD" ? null : text, {
    headers: {
      "Content-Type": PROMETHEUS_CONTENT_TYPE,
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
    },
  });
}

function plain(status: number, body: string, headers: Record<string, string>): Response {
  return new Response(body, {
    status,
    headers: { "Content-Type": "text/plain; charset=utf-8", ...headers },
  });
}

function clientAddress(info: unknown): string {
  const address = (info as { remoteAddr?: { hostname?: unknown } } | undefined)?.remoteAddr;
  return typeof address?.hostname === "string" ? address.hostname : "unknown";
}
