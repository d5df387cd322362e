/**
 * The dashboard and Prometheus metrics of a queue database (SQLite or PostgreSQL): a `fetch`
 * handler to mount in any Deno, Bun or Node server, a server of its own, and the metrics as text
 * or as a handler.
 *
 * @example Mount the dashboard and the metrics in your own server
 * ```ts
 * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
 * import { createBoardHandler, createMetricsHandler, renderMetrics } from "@apalis/sqlite/board";
 *
 * const db = openDatabase(":memory:");
 * SqliteStorage.setup(db);
 * await new SqliteStorage(db, "email").push({ to: "ada@example.com" });
 *
 * const board = createBoardHandler(db, { basePath: "/jobs" });
 * const metrics = createMetricsHandler(db);
 * const handler = (req: Request): Promise<Response> =>
 *   new URL(req.url).pathname === "/metrics" ? metrics(req) : board(req);
 *
 * const page = await handler(new Request("http://localhost/jobs/"));
 * if (page.status !== 200) throw new Error(`unexpected ${page.status}`);
 * const text = await renderMetrics(db);
 * if (!text.includes('apalis_tasks{queue="email",state="pending"} 1')) throw new Error("unexpected");
 * db.close();
 * ```
 *
 * @module
 */
export {
  allowedHostsProblem,
  type BoardHandler,
  type BoardOptions,
  createBoardHandler,
  createMetricsHandler,
  formatMetrics,
  type MetricsHandlerOptions,
  renderMetrics,
  serveBoard,
  type ServeBoardOptions,
} from "./lib/board/mod.ts";
export {
  DURATION_BOUNDS_MS,
  type DurationHistogram,
  METRICS_SAMPLE,
  type MetricsSnapshot,
  type QueueMetrics,
} from "./lib/storage/metrics.ts";
