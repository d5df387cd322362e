import {
  Admin,
  type AdminOptions,
  type Clock,
  type Codec,
  type Database,
  type LogsOptions,
  RUN_STATUSES,
  type RunStatus,
  SqliteStorage,
  systemClock,
  TASK_STATUSES,
  TaskNotFoundError,
  TaskStateError,
  type TaskStatus,
} from "../../mod.ts";
import { CostlyReads } from "./costly_reads.ts";
import { BOARD_CSS, BOARD_JS } from "./assets.ts";
import { BoardAuth, checkSessionMs, DEFAULT_SESSION_MS } from "./auth.ts";
import { hostPolicy } from "./hosts.ts";
import { overview, queuePage, runsPage, runView } from "./data.ts";
import { jsonReplacer } from "./format.ts";
import { href, layout, type Page, type PageContext } from "./layout.ts";
import { loginPage, messagePage } from "./pages/message.ts";
import { overviewPage } from "./pages/overview.ts";
import { queuePageView } from "./pages/queue.ts";
import { runPage, runsPageView } from "./pages/runs.ts";
import { type TaskNotice, taskPage } from "./pages/task.ts";
import { workersPage } from "./pages/workers.ts";
import { schedulesPage } from "./pages/schedules.ts";
import { metricsResponse } from "./metrics.ts";
import { formatMetrics } from "./prometheus.ts";

/** Options of {@linkcode createBoardHandler}. */
export interface BoardOptions {
  /**
   * Require this token for everything: `Authorization: Bearer <token>`, or the cookie set by the
   * login page. Without it, anyone who can reach the board can read and act on every queue.
   */
  token?: string;
  /**
   * How long a login through the login page lasts, in ms (the cookie's `Max-Age` too): from 1 s
   * to 400 days. A restart of the board also ends every login. @default {43200000} (12 hours)
   */
  sessionMs?: number;
  /** Where the handler is mounted, like `/board` (default: the root). */
  basePath?: string;
  /** Decodes arguments and results for display. @default {JsonCodec} */
  codec?: Codec;
  /** How often pages refresh their data in the browser, in ms; 0 turns it off. @default {2000} */
  refreshMs?: number;
  /**
   * Where time comes from (tests). Without one, pages and logins use the system clock, and the
   * database's reads and repairs the time of the `Admin` given (the database server's, for
   * `PostgresStorage.admin(pg)` without a clock).
   */
  clock?: Clock;
  /**
   * Host names the board answers besides this machine's loopback names (`localhost`, names under
   * `.localhost`, `127.0.0.1`, `[::1]`), which it always answers. `"board.example.com"` is that
   * name, `".example.com"` that domain and every name under it, `"*"` any name. A request whose
   * `Host` is none of them gets 403 before anything else runs: this stops DNS rebinding, where a
   * page on an attacker's domain that resolves to 127.0.0.1 reads and acts on the board. Ports
   * are not compared. Mounted in a server reached by a public name, list that name here.
   * @default {[]}
   */
  allowedHosts?: readonly string[];
  /**
   * Also answer requests addressed by any IP address, like `http://192.0.2.7:8000/` (an address
   * is not looked up, so DNS cannot rebind it). `serveBoard` turns this on when it
   * listens on an address that is not loopback, such as `0.0.0.0`.
   * @default {false}
   */
  allowIpHosts?: boolean;
}

/**
 * A `fetch`-style handler: give it to `Deno.serve`, or mount it in your router. `info` is what
 * the server knows of the request: `Deno.serve` passes its `remoteAddr`, whose `hostname` (the
 * client's address) is what wrong tokens are counted by; without one, all clients count as one.
 * On Bun, pass it yourself: `fetch: (req, server) => board(req, { remoteAddr: { hostname:
 * server.requestIP(req)?.address } })` (`serveBoard` does this). Anything else is ignored.
 */
export type BoardHandler = (req: Request, info?: unknown) => Promise<Response>;

const PAGE_SIZE = 25;
const MAX_PAGE_SIZE = 500;

/** A request that cannot be answered as asked: its status and a message for the user. */
class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/**
 * The dashboard as a `fetch` handler: HTML pages for queues, tasks, workers and workflow runs
 * (refreshing their data live), the same data as JSON under `/api/`, and Prometheus metrics at
 * `/metrics` (see `renderMetrics`; with a `token`, a scraper sends it as
 * `Authorization: Bearer <token>`, like any client of the API). It reads and writes
 * through the public {@linkcode Admin} API of the database it is given (a SQLite connection, or
 * the admin of any storage: `PostgresStorage.admin(pg)` for PostgreSQL), and its pages, styles
 * and script are built in.
 *
 * It answers only requests addressed to this machine's loopback names (`localhost`,
 * `127.0.0.1`, `[::1]`) or to a name in `allowedHosts`: mounted in a server that people reach by
 * another name, list that name. With a `token`, wrong tokens are counted per client address
 * (pass the server's request info along, as `Deno.serve` does) and answered 429 after 5 tries.
 *
 * @example Serve it with Deno on localhost, behind a token
 * ```ts ignore
 * import { createBoardHandler } from "@apalis/sqlite/board";
 * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
 *
 * const db = openDatabase("jobs.db");
 * SqliteStorage.setup(db);
 * const board = createBoardHandler(db, { token: Deno.env.get("APALIS_BOARD_TOKEN") });
 * Deno.serve({ hostname: "127.0.0.1", port: 8000 }, board);
 * ```
 *
 * @example Call it directly
 * ```ts
 * import { createBoardHandler } from "@apalis/sqlite/board";
 * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
 *
 * const db = openDatabase(":memory:");
 * SqliteStorage.setup(db);
 * await new SqliteStorage(db, "email").push({ to: "a@example.com" });
 * const board = createBoardHandler(db);
 * const response = await board(new Request("http://localhost/api/overview"));
 * const data = await response.json();
 * if (data.queues[0].counts.pending !== 1) throw new Error("unexpected");
 * db.close();
 * ```
 */
export function createBoardHandler(
  database: Database | Admin,
  options: BoardOptions = {},
): BoardHandler {
  const base = normalizeBase(options.basePath ?? "");
  const hosts = hostPolicy(options.allowedHosts ?? [], options.allowIpHosts ?? false);
  if (options.token !== undefined && options.token.trim() === "") {
    throw new TypeError("Cannot create the board: 'token' must not be empty when given");
  }
  const refreshMs = options.refreshMs ?? 2000;
  if (!Number.isSafeInteger(refreshMs) || refreshMs < 0) {
    throw new RangeError(
      `Cannot create the board: 'refreshMs' must be an integer >= 0: current value is ${refreshMs}`,
    );
  }
  const sessionMs = checkSessionMs(options.sessionMs ?? DEFAULT_SESSION_MS);
  const clock = options.clock ?? systemClock;
  // Repairs, throughput and liveness keep the database's own time when it has one (an admin of
  // PostgreSQL without a clock): hosts' clocks may disagree. `clock` still dates pages and logins.
  const adminOptions: AdminOptions = {};
  if (options.clock !== undefined) adminOptions.clock = options.clock;
  else if (database instanceof Admin && !database.databaseTime) adminOptions.clock = database.clock;
  if (options.codec) adminOptions.codec = options.codec;
  const storage = database instanceof Admin
    ? new Admin(database.backend, adminOptions)
    : SqliteStorage.admin(database, adminOptions);
  const auth = options.token === undefined
    ? undefined
    : new BoardAuth(options.token, { path: base, sessionMs, clock });
  const reads = new CostlyReads(clock);
  const context = (): PageContext => ({
    base,
    now: clock.now(),
    protected: auth !== undefined,
    refreshMs,
    dbPath: storage.backend.location,
  });

  return async (req, info) => {
    const url = new URL(req.url);
    const host = req.headers.get("host") ?? url.host;
    if (!hosts.allows(host)) return refusedHost(host);
    if (url.pathname !== base && !url.pathname.startsWith(`${base}/`)) {
      return text(404, "Not found");
    }
    const path = url.pathname.slice(base.length) || "/";
    // Answered in JSON (errors too), never redirected to the login page: the API and metrics.
    const api = path.startsWith("/api/") || path === "/metrics";
    const ctx = context();
    try {
      if (req.method === "GET" && path === "/assets/board.css") {
        return asset(BOARD_CSS, "text/css; charset=utf-8");
      }
      if (req.method === "GET" && path === "/assets/board.js") {
        return asset(BOARD_JS, "text/javascript; charset=utf-8");
      }
      if (req.method !== "GET" && req.method !== "HEAD" && !sameOrigin(req, url)) {
        throw new HttpError(403, "Refused: the request came from another site");
      }
      const client = clientAddress(info);
      if (path === "/login" || path === "/logout") {
        return await login(req, url, ctx, auth, path, client);
      }
      const verdict = auth ? await auth.allows(req, client) : { ok: true } as const;
      if (!verdict.ok && verdict.waitMs > 0) {
        const message = tooManyFailures(verdict.waitMs);
        if (api) return json(429, { error: message }, retryAfter(verdict.waitMs));
        const view = messagePage("Too many failed attempts", message);
        return page(ctx, req, view, 429, retryAfter(verdict.waitMs));
      }
      if (!verdict.ok) {
        if (api) {
          return json(401, { error: "A token is required (Authorization: Bearer <token>)" }, {
            "WWW-Authenticate": 'Bearer realm="apalis board"',
          });
        }
        if (req.method === "GET") {
          return redirect(
            `${href(ctx, "/login")}?next=${encodeURIComponent(url.pathname + url.search)}`,
          );
        }
        return page(
          ctx,
          req,
          messagePage("Log in first", "This action needs the board's token."),
          401,
        );
      }
      // A write may change any count: the next read of each is fresh.
      if (req.method === "POST") reads.clear();
      if (path === "/metrics" && (req.method === "GET" || req.method === "HEAD")) {
        return metricsResponse(req, formatMetrics(await storage.metrics()));
      }
      return api
        ? await routeApi(req, url, path, storage, reads, ctx)
        : await routePage(req, url, path, storage, reads, ctx);
    } catch (error) {
      const status = error instanceof HttpError ? error.status : 500;
      const message = error instanceof Error ? error.message : String(error);
      if (api) return json(status, { error: message });
      return page(ctx, req, messagePage(status === 404 ? "Not found" : "Error", message), status);
    }
  };
}

async function routePage(
  req: Request,
  url: URL,
  path: string,
  storage: Admin,
  reads: CostlyReads,
  ctx: PageContext,
): Promise<Response> {
  const parts = path.split("/").slice(1).map(decodePart);
  if (req.method === "GET" || req.method === "HEAD") {
    if (path === "/") {
      return page(ctx, req, overviewPage(ctx, await overview(storage, ctx.now, reads)));
    }
    if (parts[0] === "queues" && parts.length === 2 && parts[1]) {
      const data = await queuePage(storage, reads, {
        queue: parts[1],
        status: taskStatus(url),
        page: pageNumber(url),
        pageSize: PAGE_SIZE,
      });
      return page(ctx, req, queuePageView(ctx, data));
    }
    if (path === "/tasks") {
      const id = url.searchParams.get("id")?.trim() ?? "";
      if (id && await storage.fetchById(id)) {
        return redirect(href(ctx, `/tasks/${encodeURIComponent(id)}`));
      }
      throw new HttpError(404, `No task has the id '${id}'`);
    }
    if (parts[0] === "tasks" && parts.length === 2) {
      const task = await storage.fetchById(parts[1]!);
      if (!task) throw new HttpError(404, `No task has the id '${parts[1]}'`);
      // The latest attempt's last lines (the page refreshes itself while the task runs).
      const lines = task.attempts === 0 ? [] : await storage.logs(task.id, {
        attempt: task.attempts,
        last: true,
        limit: TASK_PAGE_LOG_LINES,
      });
      return page(ctx, req, taskPage(ctx, task, taskNotice(url), lines));
    }
    if (path === "/workers") return page(ctx, req, workersPage(ctx, await storage.listWorkers()));
    if (path === "/schedules") {
      return page(ctx, req, schedulesPage(ctx, await storage.listSchedules()));
    }
    if (path === "/runs") {
      const data = await runsPage(storage, runsFilter(url, PAGE_SIZE));
      return page(ctx, req, runsPageView(ctx, data));
    }
    if (parts[0] === "runs" && parts.length === 2) {
      const run = await runView(storage, parts[1]!);
      if (!run) throw new HttpError(404, `No workflow run has the id '${parts[1]}'`);
      return page(ctx, req, runPage(ctx, run));
    }
  }
  if (req.method === "POST" && parts[0] === "queues" && parts.length === 3 && parts[1]) {
    const [, queue, action] = parts as [string, string, string];
    if (action === "pause" || action === "resume") {
      await (action === "pause" ? storage.pauseQueue(queue) : storage.resumeQueue(queue));
      return redirect(href(ctx, `/queues/${encodeURIComponent(queue)}`));
    }
  }
  if (req.method === "POST" && parts[0] === "tasks" && parts.length === 3) {
    const [, id, action] = parts as [string, string, string];
    const task = `/tasks/${encodeURIComponent(id)}`;
    if (action === "delete") {
      const found = await storage.fetchById(id);
      if (!found || !(await storage.delete(id))) {
        throw new HttpError(404, `No task has the id '${id}'`);
      }
      return redirect(href(ctx, `/queues/${encodeURIComponent(found.queue)}`));
    }
    if (action === "retry" || action === "kill") {
      try {
        await (action === "retry" ? storage.retry(id) : storage.kill(id));
        return redirect(href(ctx, `${task}?notice=${action === "retry" ? "retried" : "killed"}`));
      } catch (error) {
        if (error instanceof TaskNotFoundError) throw new HttpError(404, error.message);
        if (error instanceof TaskStateError) {
          return redirect(href(ctx, `${task}?notice=refused-${action}`));
        }
        throw error;
      }
    }
  }
  throw noRoute(req, path, "page");
}

async function routeApi(
  req: Request,
  url: URL,
  path: string,
  storage: Admin,
  reads: CostlyReads,
  ctx: PageContext,
): Promise<Response> {
  const parts = path.split("/").slice(2).map(decodePart);
  if (req.method === "GET") {
    if (path === "/api/overview") return json(200, await overview(storage, ctx.now, reads));
    if (parts[0] === "queues" && parts.length === 3 && parts[1] && parts[2] === "tasks") {
      return json(
        200,
        await queuePage(storage, reads, {
          queue: parts[1],
          status: taskStatus(url),
          page: pageNumber(url),
          pageSize: pageSize(url),
        }),
      );
    }
    if (parts[0] === "tasks" && parts.length === 2) {
      const task = await storage.fetchById(parts[1]!);
      if (!task) throw new HttpError(404, `No task has the id '${parts[1]}'`);
      return json(200, task);
    }
    if (parts[0] === "tasks" && parts.length === 3 && parts[2] === "logs") {
      return json(200, await taskLogs(storage, parts[1]!, url));
    }
    if (path === "/api/workers") return json(200, await storage.listWorkers());
    if (path === "/api/schedules") return json(200, await storage.listSchedules());
    if (path === "/api/runs") {
      return json(
        200,
        await runsPage(storage, runsFilter(url, pageSize(url))),
      );
    }
    if (parts[0] === "runs" && parts.length === 2) {
      const run = await runView(storage, parts[1]!);
      if (!run) throw new HttpError(404, `No workflow run has the id '${parts[1]}'`);
      return json(200, run);
    }
  }
  if (req.method === "POST" && parts[0] === "queues" && parts.length === 3 && parts[1]) {
    const [, queue, action] = parts as [string, string, string];
    if (action === "pause") return json(200, { queue, ...await storage.pauseQueue(queue) });
    if (action === "resume") return json(200, { queue, ...await storage.resumeQueue(queue) });
  }
  if (req.method === "POST" && parts[0] === "tasks" && parts.length === 3) {
    const [, id, action] = parts as [string, string, string];
    try {
      if (action === "retry") return json(200, await storage.retry(id));
      if (action === "kill") return json(200, await storage.kill(id));
      if (action === "delete") {
        if (!(await storage.delete(id))) throw new TaskNotFoundError(id);
        return json(200, { deleted: id });
      }
    } catch (error) {
      if (error instanceof TaskNotFoundError) throw new HttpError(404, error.message);
      if (error instanceof TaskStateError) throw new HttpError(409, error.message);
      throw error;
    }
  }
  throw noRoute(req, path, "endpoint");
}

/** 404 for a GET to a path the board does not serve, 405 for any other method. */
function noRoute(req: Request, path: string, what: "page" | "endpoint"): HttpError {
  return req.method === "GET"
    ? new HttpError(404, `No ${what} at '${path}'`)
    : new HttpError(405, `${req.method} is not allowed at '${path}'`);
}

async function login(
  req: Request,
  url: URL,
  ctx: PageContext,
  auth: BoardAuth | undefined,
  path: string,
  client: string,
): Promise<Response> {
  if (!auth) return redirect(href(ctx, "/"));
  if (path === "/logout") {
    if (req.method !== "POST") throw new HttpError(405, "Log out with POST");
    return redirect(href(ctx, "/login"), { "Set-Cookie": auth.logoutCookie() });
  }
  const next = safeNext(url.searchParams.get("next"), ctx);
  if (req.method === "GET") return page(ctx, req, loginPage(ctx, next, null));
  if (req.method !== "POST") throw new HttpError(405, "Log in with POST");
  const form = await req.formData().catch(() => new FormData());
  const token = form.get("token");
  const target = safeNext(String(form.get("next") ?? ""), ctx);
  const verdict = await auth.accepts(typeof token === "string" ? token : "", client);
  if (verdict.ok) {
    const secure = url.protocol === "https:";
    return redirect(target, { "Set-Cookie": await auth.loginCookie(secure) });
  }
  if (verdict.waitMs > 0) {
    const wait = tooManyFailures(verdict.waitMs);
    return page(ctx, req, loginPage(ctx, target, wait), 429, retryAfter(verdict.waitMs));
  }
  return page(ctx, req, loginPage(ctx, target, "Wrong token."), 401);
}

/** The client's address from what the server passed along, or "unknown" (all such as one). */
function clientAddress(info: unknown): string {
  const address = (info as { remoteAddr?: { hostname?: unknown } } | undefined)?.remoteAddr;
  return typeof address?.hostname === "string" ? address.hostname : "unknown";
}

function tooManyFailures(waitMs: number): string {
  return `Too many failed attempts from your address: try again in ${Math.ceil(waitMs / 1000)} s.`;
}

function retryAfter(waitMs: number): Record<string, string> {
  return { "Retry-After": String(Math.ceil(waitMs / 1000)) };
}

/** A redirect target inside the board, or the overview: never another site. */
function safeNext(next: string | null, ctx: PageContext): string {
  const root = href(ctx, "/");
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.includes("\\")) return root;
  if (ctx.base && next !== ctx.base && !next.startsWith(`${ctx.base}/`)) return root;
  return next;
}

/** Write requests must come from the board's own pages (or from a non-browser client). */
function sameOrigin(req: Request, url: URL): boolean {
  if (req.headers.get("sec-fetch-site") === "cross-site") return false;
  const origin = req.headers.get("origin");
  if (origin === null) return true;
  if (origin === "null") return false;
  try {
    const host = new URL(origin).host;
    return host === url.host || host === req.headers.get("host") ||
      host === req.headers.get("x-forwarded-host");
  } catch {
    return false;
  }
}

/** 403 for a host name the board does not answer (see `BoardOptions.allowedHosts`). */
function refusedHost(host: string): Response {
  const name = host.replace(/:\d+$/, "");
  const how = /^[A-Za-z0-9._-]+$/.test(name)
    ? `start the board with --allow-host ${name}, or pass allowedHosts: ["${name}"] to createBoardHandler or serveBoard`
    : "start the board with --allow-host NAME, or pass allowedHosts to createBoardHandler or serveBoard";
  return text(
    403,
    `Refused: this board does not answer to the host ${
      JSON.stringify(name)
    } (a page on another site may be reaching it through DNS rebinding). To allow a name, ${how}.\n`,
  );
}

/** One path segment, decoded; a malformed escape is the client's mistake (400), not ours. */
function decodePart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new HttpError(400, `The path has a malformed escape: '${part}'`);
  }
}

function taskStatus(url: URL): TaskStatus | null {
  const status = url.searchParams.get("status");
  if (!status) return null;
  if (!(TASK_STATUSES as readonly string[]).includes(status)) {
    throw new HttpError(
      400,
      `'status' must be one of ${TASK_STATUSES.join(", ")}: current value is '${status}'`,
    );
  }
  return status as TaskStatus;
}

/** The runs listing's query: `queue`, `status`, `page`. */
function runsFilter(url: URL, size: number) {
  return {
    queue: url.searchParams.get("queue") || null,
    status: runStatus(url),
    page: pageNumber(url),
    pageSize: size,
  };
}

function runStatus(url: URL): RunStatus | null {
  const status = url.searchParams.get("status");
  if (!status) return null;
  if (!(RUN_STATUSES as readonly string[]).includes(status)) {
    throw new HttpError(
      400,
      `'status' must be one of ${RUN_STATUSES.join(", ")}: current value is '${status}'`,
    );
  }
  return status as RunStatus;
}

/** The task page shows this many of the latest attempt's last lines. */
const TASK_PAGE_LOG_LINES = 100;

/**
 * `GET /api/tasks/ID/logs[?attempt=N][&after=SEQ][&limit=N]`: the task's lines, oldest first
 * (at most `limit`, default 1000), and whether it has finished (no line comes after).
 */
async function taskLogs(storage: Admin, id: string, url: URL) {
  const task = await storage.fetchById(id);
  if (!task) throw new HttpError(404, `No task has the id '${id}'`);
  const options: LogsOptions = { limit: positive(url, "limit", 1000, 10_000) };
  if (url.searchParams.has("attempt")) {
    options.attempt = positive(url, "attempt", 1, Number.MAX_SAFE_INTEGER);
  }
  const after = url.searchParams.get("after");
  if (after !== null && after !== "") {
    const n = Number(after);
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new HttpError(400, `'after' must be an integer >= 0: current value is '${after}'`);
    }
    options.after = n;
  }
  const lines = await storage.logs(id, options);
  return {
    id,
    status: task.status,
    finished: task.status === "done" || task.status === "killed",
    lines,
  };
}

function pageNumber(url: URL): number {
  return positive(url, "page", 1, Number.MAX_SAFE_INTEGER);
}

function pageSize(url: URL): number {
  return positive(url, "pageSize", PAGE_SIZE, MAX_PAGE_SIZE);
}

function positive(url: URL, name: string, fallback: number, max: number): number {
  const value = url.searchParams.get(name);
  if (value === null || value === "") return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1 || n > max) {
    throw new HttpError(
      400,
      `'${name}' must be an integer from 1 to ${max}: current value is '${value}'`,
    );
  }
  return n;
}

function taskNotice(url: URL): TaskNotice {
  const notice = url.searchParams.get("notice");
  return notice === "retried" || notice === "killed" || notice === "refused-retry" ||
      notice === "refused-kill"
    ? notice
    : null;
}

function normalizeBase(basePath: string): string {
  const trimmed = basePath.replace(/\/+$/, "");
  if (trimmed !== "" && !/^\/[A-Za-z0-9._~\-/]*$/.test(trimmed)) {
    throw new TypeError(
      `Cannot create the board: 'basePath' must be a path like "/board": current value is ${
        JSON.stringify(basePath)
      }`,
    );
  }
  return trimmed;
}

const SECURITY_HEADERS: Record<string, string> = {
  "Content-Security-Policy":
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "X-Content-Type-Options": "nosniff",
  // Not "no-referrer": under it browsers send `Origin: null` with the board's own form posts,
  // which `sameOrigin` must refuse. "same-origin" still keeps URLs from other sites.
  "Referrer-Policy": "same-origin",
  "X-Frame-Options": "DENY",
};

/** A page, whole or (for the live refresh) only its `<main>` content. */
function page(
  ctx: PageContext,
  req: Request,
  view: Page,
  status = view.status ?? 200,
  extra: Record<string, string> = {},
): Response {
  const partial = req.headers.get("x-board-partial") === "1";
  const body = partial ? view.content.text : layout(ctx, view).text.trimStart();
  const headers: Record<string, string> = {
    ...SECURITY_HEADERS,
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    ...extra,
  };
  if (partial) headers["X-Board-Partial"] = "1";
  return new Response(req.method === "HEAD" ? null : body, { status, headers });
}

function json(status: number, data: unknown, extra: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(data, jsonReplacer), {
    status,
    headers: {
      ...SECURITY_HEADERS,
      "Content-Type": "application/json; charset=utf-8",
      "Cache-Control": "no-store",
      ...extra,
    },
  });
}

function asset(body: string, type: string): Response {
  return new Response(body, {
    headers: { ...SECURITY_HEADERS, "Content-Type": type, "Cache-Control": "public, max-age=300" },
  });
}

function text(status: number, body: string): Response {
  return new Response(body, {
    status,
    headers: { ...SECURITY_HEADERS, "Content-Type": "text/plain; charset=utf-8" },
  });
}

function redirect(location: string, extra: Record<string, string> = {}): Response {
  return new Response(null, { status: 303, headers: { Location: location, ...extra } });
}
