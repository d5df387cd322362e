import assert from "node:assert/strict";
import { type BoardHandler, createBoardHandler } from "../../board.ts";
import { type Database, SqliteStorage, WorkerBuilder, Workflow } from "../../mod.ts";
import { runUntilFinished, tempDatabase } from "../_helpers.ts";

const ORIGIN = "http://localhost:8000";
const EVIL = "<script>alert(1)</script>";

/** A database with two queues: done, killed, pending and malicious tasks, and one run. */
async function seed(db: Database) {
  const email = new SqliteStorage<{ to: string }>(db, "email");
  const done = await email.push({ to: "a@example.com" });
  const killed = await email.push({ to: "fail@example.com" }, { maxAttempts: 1 });
  const worker = new WorkerBuilder(`mailer-${EVIL}`)
    .backend(email)
    .handleSignals(false)
    .build((args) => {
      if (args.to.startsWith("fail")) throw new Error(`SMTP said ${EVIL}`);
      return { sent: args.to };
    });
  await runUntilFinished(worker, email, [done, killed]);
  const pending = await email.push({ to: EVIL });
  const odd = new SqliteStorage<string>(db, `q${EVIL}`);
  const oddTask = await odd.push("x");
  const math = new SqliteStorage<number>(db, "math");
  const flow = new Workflow<number>("double-then-inc")
    .andThen(function double(n: number) {
      return n * 2;
    })
    .andThen(function inc(n: number) {
      return n + 1;
    });
  const runId = await math.pushStart(20);
  const runner = new WorkerBuilder("math-1").backend(math).handleSignals(false).build(flow);
  await runner.runUntil(math.waitForRun(runId));
  return { email, done, killed, pending, oddTask, runId };
}

function get(board: BoardHandler, path: string, headers: HeadersInit = {}) {
  return board(new Request(`${ORIGIN}${path}`, { headers }));
}

function post(board: BoardHandler, path: string, headers: HeadersInit = {}, body?: BodyInit) {
  return board(new Request(`${ORIGIN}${path}`, { method: "POST", headers, body }));
}

async function html(response: Response): Promise<string> {
  assert.match(response.headers.get("content-type") ?? "", /^text\/html/);
  return await response.text();
}

Deno.test("createBoardHandler() serves every HTML page with the data of the database", async () => {
  await using temp = await tempDatabase();
  const data = await seed(temp.db);
  const board = createBoardHandler(temp.db);

  const overview = await get(board, "/");
  assert.equal(overview.status, 200);
  const page = await html(overview);
  assert.match(page, /<tr data-queue="email">/);
  assert.match(page, /href="\/queues\/email\?status=killed">1</);
  assert.match(page, /Last hour: 3 done, 1 failed or killed/); // 1 email + 2 workflow steps
  assert.match(page, /<svg class="chart wide"/);
  assert.match(overview.headers.get("content-security-policy") ?? "", /script-src 'self'/);

  const queue = await html(await get(board, "/queues/email?status=killed"));
  assert.match(queue, new RegExp(`data-task="${data.killed}"`));
  assert.doesNotMatch(queue, new RegExp(`data-task="${data.done}"`), "filtered by state");

  const task = await html(await get(board, `/tasks/${data.killed}`));
  assert.match(task, /SMTP said &lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  assert.match(task, /data-action="retry"/);
  assert.doesNotMatch(task, /data-action="kill"/, "a killed task cannot be killed again");

  const found = await get(board, `/tasks?id=${data.done}`);
  assert.equal(found.status, 303);
  assert.equal(found.headers.get("location"), `/tasks/${data.done}`);
  assert.equal((await get(board, "/tasks?id=nope")).status, 404);

  const workers = await html(await get(board, "/workers"));
  assert.match(workers, /mailer-&lt;script&gt;/);
  assert.match(workers, /math-1/);

  const runs = await html(await get(board, "/runs"));
  assert.match(runs, new RegExp(`data-run="${data.runId}"`));
  assert.match(runs, /double-then-inc/);
  const run = await html(await get(board, `/runs/${data.runId}`));
  assert.match(run, /<g class="node n-done" data-node="0">/);
  assert.match(run, /<g class="node n-done" data-node="1">/);
  assert.match(run, /andThen double/);

  for (const asset of ["/assets/board.css", "/assets/board.js"]) {
    const response = await get(board, asset);
    assert.equal(response.status, 200, asset);
    assert.ok((await response.text()).length > 500, asset);
  }
});

Deno.test("createBoardHandler() never lets a payload, error, queue or worker name inject HTML", async () => {
  await using temp = await tempDatabase();
  const data = await seed(temp.db);
  const board = createBoardHandler(temp.db);
  const pages = [
    "/",
    "/queues/email",
    `/queues/${encodeURIComponent(`q${EVIL}`)}`,
    `/tasks/${data.pending}`,
    `/tasks/${data.killed}`,
    `/tasks/${data.oddTask}`,
    "/workers",
    "/runs",
    `/tasks?id=${encodeURIComponent(EVIL)}`,
    `/nowhere/${encodeURIComponent(EVIL)}`,
  ];
  for (const path of pages) {
    const text = await (await get(board, path)).text();
    assert.doesNotMatch(text, /<script>alert/, path);
    // Our own script tag is the only one, and it has no inline code.
    assert.equal(text.match(/<script/g)?.length ?? 0, text.includes("<html") ? 1 : 0, path);
  }
  const task = await (await get(board, `/tasks/${data.pending}`)).text();
  assert.match(task, /&quot;to&quot;: &quot;&lt;script&gt;alert\(1\)&lt;\/script&gt;&quot;/);
});

Deno.test("createBoardHandler() answers every /api/ endpoint with JSON", async () => {
  await using temp = await tempDatabase();
  const data = await seed(temp.db);
  const board = createBoardHandler(temp.db);

  const overview = await (await get(board, "/api/overview")).json();
  const email = overview.queues.find((q: { name: string }) => q.name === "email");
  assert.deepEqual(
    { pending: email.counts.pending, done: email.counts.done, killed: email.counts.killed },
    { pending: 1, done: 1, killed: 1 },
  );
  assert.equal(email.throughput.length, 60);
  assert.equal(email.throughput.reduce((n: number, m: { done: number }) => n + m.done, 0), 1);
  assert.deepEqual(email.workers, { alive: 0, dead: 0 }, "a stopped worker is not dead");
  assert.equal(typeof email.oldestPendingAgeMs, "number");
  assert.equal(overview.totals.total, 6);

  const page = await (await get(board, "/api/queues/email/tasks?pageSize=2")).json();
  assert.equal(page.tasks.length, 2);
  assert.equal(page.more, true);
  assert.deepEqual(page.tasks.map((t: { id: string }) => t.id), [data.pending, data.killed]);
  const second = await (await get(board, "/api/queues/email/tasks?pageSize=2&page=2")).json();
  assert.deepEqual(second.tasks.map((t: { id: string }) => t.id), [data.done]);
  assert.equal(second.more, false);
  const killed = await (await get(board, "/api/queues/email/tasks?status=killed")).json();
  assert.deepEqual(killed.tasks.map((t: { id: string }) => t.id), [data.killed]);

  const task = await (await get(board, `/api/tasks/${data.killed}`)).json();
  assert.equal(task.status, "killed");
  assert.match(task.lastError.message, /SMTP said/);
  assert.match(task.lastError.stack, /Error: SMTP said/);

  const workers = await (await get(board, "/api/workers")).json();
  assert.deepEqual(
    workers.map((w: { name: string }) => w.name).sort(),
    [
      "math-1",
      `mailer-${EVIL}`,
    ].sort(),
  );

  const runs = await (await get(board, "/api/runs?status=done")).json();
  assert.deepEqual(runs.runs.map((r: { id: string }) => r.id), [data.runId]);
  const run = await (await get(board, `/api/runs/${data.runId}`)).json();
  assert.equal(run.result, 41);
  assert.deepEqual(run.nodeStates, { "0": "done", "1": "done" });
  assert.equal(run.graph.nodes.length, 2);

  const missing = await get(board, "/api/tasks/nope");
  assert.equal(missing.status, 404);
  assert.match((await missing.json()).error, /No task has the id 'nope'/);
  assert.equal((await get(board, "/api/runs/nope")).status, 404);
  assert.equal((await get(board, "/api/nothing")).status, 404);
});

Deno.test("createBoardHandler() answers 400 with the reason when a query parameter is invalid", async () => {
  await using temp = await tempDatabase();
  const board = createBoardHandler(temp.db);
  for (
    const [path, reason] of [
      ["/api/queues/email/tasks?status=lost", /'status' must be one of pending, queued/],
      ["/api/queues/email/tasks?page=0", /'page' must be an integer from 1/],
      ["/api/queues/email/tasks?pageSize=100000", /'pageSize' must be an integer from 1 to 500/],
      ["/api/runs?status=pending", /'status' must be one of running, done, failed/],
    ] as const
  ) {
    const response = await get(board, path);
    assert.equal(response.status, 400, path);
    assert.match((await response.json()).error, reason, path);
  }
  const malformed = await get(board, "/api/tasks/%E0%A4%A");
  assert.equal(malformed.status, 400);
  assert.match((await malformed.json()).error, /malformed escape/);
  assert.equal((await get(board, "/tasks/%E0%A4%A")).status, 400);
  const page = await get(board, "/queues/email?page=abc");
  assert.equal(page.status, 400);
  const text = await page.text();
  assert.match(text, /&#39;page&#39; must be an integer/);
  assert.match(text, /data-refresh-ms="0"/, "an error page does not refresh itself");
});

Deno.test("createBoardHandler() retries, kills and deletes tasks through POST, from pages and from the API", async () => {
  await using temp = await tempDatabase();
  const data = await seed(temp.db);
  const board = createBoardHandler(temp.db);

  const retried = await post(board, `/tasks/${data.killed}/retry`, { origin: ORIGIN });
  assert.equal(retried.status, 303);
  assert.equal(retried.headers.get("location"), `/tasks/${data.killed}?notice=retried`);
  assert.equal((await data.email.fetchById(data.killed))?.status, "pending");
  const notice = await html(await get(board, `/tasks/${data.killed}?notice=retried`));
  assert.match(notice, /Retried: the task is pending again/);

  const killed = await post(board, `/tasks/${data.killed}/kill`);
  assert.equal(killed.headers.get("location"), `/tasks/${data.killed}?notice=killed`);
  assert.equal((await data.email.fetchById(data.killed))?.status, "killed");
  const refused = await post(board, `/tasks/${data.done}/kill`);
  assert.equal(refused.headers.get("location"), `/tasks/${data.done}?notice=refused-kill`);
  assert.equal((await data.email.fetchById(data.done))?.status, "done", "a done task stays done");

  const deleted = await post(board, `/tasks/${data.pending}/delete`);
  assert.equal(deleted.status, 303);
  assert.equal(deleted.headers.get("location"), "/queues/email");
  assert.equal(await data.email.fetchById(data.pending), undefined);
  assert.equal((await post(board, `/tasks/${data.pending}/delete`)).status, 404);

  const apiRetry = await post(board, `/api/tasks/${data.killed}/retry`);
  assert.equal(apiRetry.status, 200);
  assert.equal((await apiRetry.json()).status, "pending");
  const apiKill = await post(board, `/api/tasks/${data.done}/kill`);
  assert.equal(apiKill.status, 409);
  assert.match((await apiKill.json()).error, /done/);
  const apiDelete = await post(board, `/api/tasks/${data.done}/delete`);
  assert.deepEqual(await apiDelete.json(), { deleted: data.done });
  assert.equal((await post(board, "/api/tasks/nope/retry")).status, 404);
  assert.equal((await post(board, `/api/tasks/${data.killed}/explode`)).status, 405);
  assert.equal((await get(board, `/tasks/${data.killed}/retry`)).status, 404, "GET never acts");
  assert.equal((await data.email.fetchById(data.killed))?.status, "pending");
});

Deno.test("createBoardHandler() refuses write requests from another site", async () => {
  await using temp = await tempDatabase();
  const data = await seed(temp.db);
  const board = createBoardHandler(temp.db);
  for (
    const headers of [
      { origin: "http://evil.example" } as Record<string, string>,
      { origin: "null" },
      { "sec-fetch-site": "cross-site" },
    ]
  ) {
    const response = await post(board, `/tasks/${data.pending}/delete`, headers);
    assert.equal(response.status, 403, JSON.stringify(headers));
    const api = await post(board, `/api/tasks/${data.killed}/retry`, headers);
    assert.equal(api.status, 403, JSON.stringify(headers));
  }
  assert.equal((await data.email.fetchById(data.pending))?.status, "pending");
  assert.equal((await data.email.fetchById(data.killed))?.status, "killed");
});

Deno.test("createBoardHandler() with a token requires it for pages, the API and actions", async () => {
  await using temp = await tempDatabase();
  const data = await seed(temp.db);
  const board = createBoardHandler(temp.db, { token: "s3cret" });

  const page = await get(board, "/queues/email?status=killed");
  assert.equal(page.status, 303);
  assert.equal(
    page.headers.get("location"),
    `/login?next=${encodeURIComponent("/queues/email?status=killed")}`,
  );
  const api = await get(board, "/api/overview");
  assert.equal(api.status, 401);
  assert.match(api.headers.get("www-authenticate") ?? "", /^Bearer/);
  assert.equal((await get(board, "/api/overview", { authorization: "Bearer wrong" })).status, 401);
  assert.equal((await get(board, "/api/overview", { authorization: "Bearer s3cret" })).status, 200);
  assert.equal((await get(board, "/assets/board.css")).status, 200, "styles need no token");

  const action = await post(board, `/tasks/${data.killed}/retry`);
  assert.equal(action.status, 401);
  const apiAction = await post(board, `/api/tasks/${data.killed}/retry`);
  assert.equal(apiAction.status, 401);
  assert.equal((await data.email.fetchById(data.killed))?.status, "killed", "nothing changed");

  const loginForm = await html(await get(board, "/login?next=%2Fworkers"));
  assert.match(loginForm, /name="next" value="\/workers"/);
  const wrong = await post(board, "/login", {}, new URLSearchParams({ token: "nope" }));
  assert.equal(wrong.status, 401);
  assert.match(await wrong.text(), /Wrong token/);
  const right = await post(
    board,
    "/login",
    {},
    new URLSearchParams({ token: "s3cret", next: "/workers" }),
  );
  assert.equal(right.status, 303);
  assert.equal(right.headers.get("location"), "/workers");
  const cookie = right.headers.get("set-cookie") ?? "";
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Strict/);
  assert.doesNotMatch(cookie, /s3cret/, "the cookie holds a signed session, not the token");
  const session = { cookie: cookie.split(";")[0]! };
  assert.equal((await get(board, "/workers", session)).status, 200);
  const retried = await post(board, `/tasks/${data.killed}/retry`, session);
  assert.equal(retried.status, 303);
  assert.equal((await data.email.fetchById(data.killed))?.status, "pending");
  assert.equal((await get(board, "/", { cookie: "apalis_board=forged" })).status, 303);

  const elsewhere = await post(
    board,
    "/login",
    {},
    new URLSearchParams({ token: "s3cret", next: "//evil.example/x" }),
  );
  assert.equal(elsewhere.headers.get("location"), "/", "never redirects to another site");
  const logout = await post(board, "/logout", session);
  assert.equal(logout.status, 303);
  assert.match(logout.headers.get("set-cookie") ?? "", /Max-Age=0/);
});

Deno.test("createBoardHandler() serves only the page's content when asked for a live refresh", async () => {
  await using temp = await tempDatabase();
  await seed(temp.db);
  const board = createBoardHandler(temp.db, { refreshMs: 1500 });
  const full = await html(await get(board, "/queues/email"));
  assert.match(full, /^<!doctype html>/);
  assert.match(full, /data-refresh-ms="1500"/);
  const partial = await get(board, "/queues/email", { "x-board-partial": "1" });
  assert.equal(partial.headers.get("x-board-partial"), "1");
  const body = await partial.text();
  assert.doesNotMatch(body, /<html|<header/);
  assert.match(body, /<h1>/);
  assert.ok(full.includes(body.trim().slice(0, 200)), "the partial is the page's main content");
});

Deno.test("createBoardHandler() mounted under basePath links inside it and ignores other paths", async () => {
  await using temp = await tempDatabase();
  const data = await seed(temp.db);
  const board = createBoardHandler(temp.db, { basePath: "/ops/board/" });
  assert.equal((await get(board, "/")).status, 404);
  assert.equal((await get(board, "/api/overview")).status, 404);
  const page = await html(await get(board, "/ops/board"));
  assert.match(page, /href="\/ops\/board\/queues\/email"/);
  assert.match(page, /href="\/ops\/board\/assets\/board.css"/);
  const action = await post(board, `/ops/board/tasks/${data.killed}/retry`);
  assert.equal(action.headers.get("location"), `/ops/board/tasks/${data.killed}?notice=retried`);
  assert.equal((await get(board, "/ops/board/api/workers")).status, 200);
});

Deno.test("createBoardHandler() throws a TypeError naming the option when token or basePath is invalid", async () => {
  await using temp = await tempDatabase();
  assert.throws(() => createBoardHandler(temp.db, { token: " " }), /'token' must not be empty/);
  assert.throws(() => createBoardHandler(temp.db, { basePath: "board" }), /'basePath' must be/);
  assert.throws(() => createBoardHandler(temp.db, { refreshMs: -1 }), /'refreshMs' must be/);
});

Deno.test("createBoardHandler() reuses counts that were slow to read, says how old they are, and forgets them after a write", async () => {
  await using temp = await tempDatabase();
  const email = new SqliteStorage<string>(temp.db, "email");
  const first = await email.push("a");
  // Every reading of this clock moves it on by 400 ms: each count seems to take that long.
  let now = Date.UTC(2026, 0, 1);
  const board = createBoardHandler(temp.db, { clock: { now: () => (now += 400) } });

  const fresh = await (await get(board, "/api/overview")).json();
  assert.equal(fresh.queues[0].counts.pending, 1);
  await email.push("b");
  const reused = await (await get(board, "/api/overview")).json();
  assert.equal(reused.queues[0].counts.pending, 1, "a count that took 400 ms is kept for 8 s");
  assert.equal(reused.countedAt, fresh.countedAt);
  assert.ok(reused.generatedAt - reused.countedAt >= 1000);
  assert.match(await html(await get(board, "/")), /data-counted-at="\d+">Counted [^<]* ago/);
  const queue = await (await get(board, "/api/queues/email/tasks")).json();
  assert.equal(queue.tasks.length, 2, "the listing itself is always read");

  assert.equal((await post(board, `/api/tasks/${first}/kill`)).status, 200);
  const after = await (await get(board, "/api/overview")).json();
  assert.deepEqual(
    [after.queues[0].counts.pending, after.queues[0].counts.killed],
    [1, 1],
    "a write through the board drops the kept counts",
  );
  assert.ok(after.countedAt > reused.countedAt);
});

Deno.test("createBoardHandler() pauses and resumes a queue through POST, and its page shows state and limits", async () => {
  await using temp = await tempDatabase();
  const data = await seed(temp.db);
  const board = createBoardHandler(temp.db);
  await data.email.setLimits({ rate: { limit: 100, perMs: 1_000 }, groupConcurrency: 1 });
  let page = await html(await get(board, "/queues/email"));
  assert.match(page, /data-field="paused"><span class="badge s-done">active<\/span>/);
  assert.match(page, /data-field="limits">100\/1s, 1 per group</);
  assert.match(page, /action="\/queues\/email\/pause"/);

  const paused = await post(board, "/queues/email/pause", { origin: ORIGIN });
  assert.equal(paused.status, 303);
  assert.equal(paused.headers.get("location"), "/queues/email");
  assert.equal(await data.email.isPaused(), true);
  page = await html(await get(board, "/queues/email"));
  assert.match(page, /<span class="badge s-failed">paused<\/span>/);
  assert.match(page, /action="\/queues\/email\/resume"/);

  const api = await post(board, "/api/queues/email/resume");
  assert.equal(api.status, 200);
  assert.deepEqual(await api.json(), {
    queue: "email",
    paused: false,
    limits: { rate: { limit: 100, perMs: 1_000 }, groupConcurrency: 1 },
  });
  assert.equal(await data.email.isPaused(), false);

  // Another site cannot pause; GET never acts.
  assert.equal(
    (await post(board, "/queues/email/pause", { origin: "http://evil.example" })).status,
    403,
  );
  assert.equal((await get(board, "/queues/email/pause")).status, 404);
  assert.equal(await data.email.isPaused(), false);
});
