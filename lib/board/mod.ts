/**
 * The dashboard: a `fetch` handler for any Deno or Bun server, and a server for the CLI.
 *
 * @module
 */
export { type BoardHandler, type BoardOptions, createBoardHandler } from "./handler.ts";
export { serveBoard, type ServeBoardOptions } from "./serve.ts";
export { createMetricsHandler, type MetricsHandlerOptions, renderMetrics } from "./metrics.ts";
export { formatMetrics } from "./prometheus.ts";
export { allowedHostsProblem } from "./hosts.ts";
