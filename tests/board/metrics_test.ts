/**
 * `/metrics` on the board and the standalone metrics handler: the token protects them as it
 * protects the API (a bearer, or the login cookie), the content type is the text format's, and
 * label values are escaped.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type BoardHandler,
  createBoardHandler,
  createMetricsHandler,
  renderMetrics,
} from "../../board.ts";
import { SqliteStorage } from "../../mod.ts";
import { migrate, schemaVersion } from "../../lib/store/schema.ts";
import { escapeLabelValue } from "../../lib/board/prometheus.ts";
import { tempDatabase } from "../_helpers.ts";

const TOKEN = "s3cret";
const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

function from(address: string) {
  return { remoteAddr: { transport: "tcp" as const, hostname: address, port: 40_000 } };
}

function get(
  handler: BoardHandler,
  path: string,
  headers: HeadersInit = {},
  address = "192.0.2.1",
  method = "GET",
) {
  return handler(new Request(`http://localhost${path}`, { headers, method }), from(address));
}

Deno.test("escapeLabelValue() escapes backslash, double quote and line feed, and nothing else", () => {
  assert.equal(escapeLabelValue('a"b'), 'a\\"b');
  assert.equal(escapeLabelValue("a\\b"), "a\\\\b");
  assert.equal(escapeLabelValue("a\nb"), "a\\nb");
  assert.equal(escapeLabelValue('\\"\n'), '\\\\\\"\\n');
  assert.equal(escapeLabelValue("tab\there ünïcödé {}=,"), "tab\there ünïcödé {}=,");
});

Deno.test("the board's /metrics needs the token (a bearer or the login cookie) like its API", async () => {
  await using temp = await tempDatabase();
  await new SqliteStorage(temp.db, 'e"mail').push({ to: "a@b.c" });
  const board = createBoardHandler(temp.db, { token: TOKEN });

  const anonymous = await get(board, "/metrics");
  assert.equal(anonymous.status, 401, "not redirected to the login page: a scraper reads it");
  assert.equal(anonymous.headers.get("www-authenticate"), 'Bearer realm="apalis board"');
  assert.doesNotMatch(await anonymous.text(), /apalis_tasks/);

  const wrong = await get(board, "/metrics", { Authorization: "Bearer nope" });
  assert.equal(wrong.status, 401);
  await wrong.body?.cancel();

  const ok = await get(board, "/metrics", { Authorization: `Bearer ${TOKEN}` });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get("content-type"), CONTENT_TYPE);
  assert.equal(ok.headers.get("cache-control"), "no-store");
  assert.match(await ok.text(), /^apalis_tasks\{queue="e\\"mail",state="pending"\} 1$/m);

  const login = await board(
    new Request("http://localhost/login", {
      method: "POST",
      body: new URLSearchParams({ token: TOKEN, next: "/" }),
    }),
    from("192.0.2.1"),
  );
  const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0]!;
  const withCookie = await get(board, "/metrics", { Cookie: cookie });
  assert.equal(withCookie.status, 200);
  assert.match(await withCookie.text(), /# TYPE apalis_tasks gauge/);

  const head = await get(
    board,
    "/metrics",
    { Authorization: `Bearer ${TOKEN}` },
    "192.0.2.1",
    "HEAD",
  );
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("content-type"), CONTENT_TYPE);
  assert.equal(await head.text(), "");

  const post = await get(
    board,
    "/metrics",
    { Authorization: `Bearer ${TOKEN}` },
    "192.0.2.1",
    "POST",
  );
  assert.equal(post.status, 405);
  await post.body?.cancel();
});

Deno.test("the board's /metrics answers 429 after 5 wrong tokens from one address, and lives under basePath", async () => {
  await using temp = await tempDatabase();
  const board = createBoardHandler(temp.db, { token: TOKEN, basePath: "/board" });
  for (let i = 0; i < 5; i++) {
    const response = await get(
      board,
      "/board/metrics",
      { Authorization: "Bearer nope" },
      "192.0.2.9",
    );
    assert.equal(response.status, 401);
    await response.body?.cancel();
  }
  const blocked = await get(
    board,
    "/board/metrics",
    { Authorization: `Bearer ${TOKEN}` },
    "192.0.2.9",
  );
  assert.equal(blocked.status, 429, "even the right token, while the address waits");
  assert.ok(Number(blocked.headers.get("retry-after")) >= 1);
  await blocked.body?.cancel();
  const other = await get(
    board,
    "/board/metrics",
    { Authorization: `Bearer ${TOKEN}` },
    "192.0.2.10",
  );
  assert.equal(other.status, 200);
  await other.body?.cancel();
  const outside = await get(board, "/metrics", { Authorization: `Bearer ${TOKEN}` }, "192.0.2.10");
  assert.equal(outside.status, 404);
  await outside.body?.cancel();
});

Deno.test("the board's /metrics is open without a token, as the rest of the board is", async () => {
  await using temp = await tempDatabase();
  await new SqliteStorage(temp.db, "email").push({ to: "a@b.c" });
  const response = await get(createBoardHandler(temp.db), "/metrics");
  assert.equal(response.status, 200);
  assert.match(await response.text(), /^apalis_tasks\{queue="email",state="pending"\} 1$/m);
});

Deno.test("createMetricsHandler() serves the text on any path with GET, checks its token, refuses other methods", async () => {
  await using temp = await tempDatabase();
  await new SqliteStorage(temp.db, "email").push({ to: "a@b.c" });
  const metrics = createMetricsHandler(temp.db, { token: TOKEN });
  const anonymous = await get(metrics, "/internal/prom");
  assert.equal(anonymous.status, 401);
  assert.equal(anonymous.headers.get("www-authenticate"), 'Bearer realm="apalis metrics"');
  await anonymous.body?.cancel();
  const ok = await get(metrics, "/internal/prom", { Authorization: `Bearer ${TOKEN}` });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get("content-type"), CONTENT_TYPE);
  assert.match(await ok.text(), /^apalis_tasks\{queue="email",state="pending"\} 1$/m);
  const post = await get(
    metrics,
    "/internal/prom",
    { Authorization: `Bearer ${TOKEN}` },
    "192.0.2.1",
    "POST",
  );
  assert.equal(post.status, 405);
  assert.equal(post.headers.get("allow"), "GET, HEAD");
  await post.body?.cancel();
  for (let i = 0; i < 5; i++) {
    const response = await get(metrics, "/", { Authorization: "Bearer nope" }, "192.0.2.7");
    assert.equal(response.status, 401);
    await response.body?.cancel();
  }
  const blocked = await get(metrics, "/", { Authorization: `Bearer ${TOKEN}` }, "192.0.2.7");
  assert.equal(blocked.status, 429);
  await blocked.body?.cancel();

  const open = await get(createMetricsHandler(SqliteStorage.admin(temp.db)), "/");
  assert.equal(open.status, 200);
  await open.body?.cancel();
  assert.throws(
    () => createMetricsHandler(temp.db, { token: " " }),
    /'token' must not be empty when given/,
  );
});

Deno.test("renderMetrics() reads a database whose schema predates the outcome totals, without upgrading it", async () => {
  await using temp = await tempDatabase({ setup: false });
  migrate(temp.db, 8);
  const email = new SqliteStorage(temp.db, "email");
  await email.kill(await email.push({ to: "a@b.c" }));
  const text = await renderMetrics(temp.db);
  assert.match(text, /^apalis_tasks_killed_total\{queue="email"\} 1$/m);
  assert.equal(schemaVersion(temp.db), 8);
});

Deno.test("renderMetrics() reads a database whose schema predates the started count, without upgrading it", async () => {
  await using temp = await tempDatabase({ setup: false });
  migrate(temp.db, 10);
  const email = new SqliteStorage(temp.db, "email");
  const id = await email.push({ to: "a@b.c" });
  temp.db.run("UPDATE apalis_tasks SET status = 'done', done_at = ?", [Date.now()]);
  temp.db.run(
    "INSERT INTO apalis_throughput (queue, minute, done, failed, killed) VALUES ('email', 0, 1, 2, 0)",
  );
  assert.equal((await email.fetchById(id))?.status, "done");
  const text = await renderMetrics(temp.db);
  // Each ended attempt had started: what the upgrade counts too.
  assert.match(text, /^apalis_tasks_started_total\{queue="email"\} 3$/m);
  assert.match(text, /^apalis_tasks_succeeded_total\{queue="email"\} 1$/m);
  assert.equal(schemaVersion(temp.db), 10);
});
