/**
 * The board in a real browser: Chromium, driven by playwright-core, against a board served by
 * `serveBoard` in this process over a real SQLite file.
 *
 * Chromium is looked up at `/usr/bin/chromium` (or `$APALIS_CHROMIUM`). When it is missing the
 * tests are ignored, unless `APALIS_BROWSER_TEST=required` (CI), where they fail.
 * `APALIS_UPDATE_SCREENSHOT=1` also writes `docs/board-overview.png` from realistic data.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Browser, chromium, type Page } from "playwright-core";
import {
  AbortError,
  type Clock,
  DagFlow,
  type Database,
  openDatabase,
  SqliteStorage,
  type Worker,
  WorkerBuilder,
} from "../../mod.ts";
import { serveBoard, type ServeBoardOptions } from "../../board.ts";
import { runUntilFinished, tempDatabase, waitUntil } from "../_helpers.ts";

const CHROMIUM = Deno.env.get("APALIS_CHROMIUM") || "/usr/bin/chromium";
const REQUIRED = Deno.env.get("APALIS_BROWSER_TEST") === "required";
const UPDATE_SCREENSHOT = Deno.env.get("APALIS_UPDATE_SCREENSHOT") === "1";
const HAS_CHROMIUM = isFile(CHROMIUM);
/** Ignore the browser tests when there is no browser, unless CI requires them. */
const IGNORE = !HAS_CHROMIUM && !REQUIRED;
const SKIPPED = IGNORE ? ` (ignored: no Chromium at ${CHROMIUM})` : "";
if (IGNORE) {
  // deno-lint-ignore no-console
  console.warn(
    `browser_test: ignored because ${CHROMIUM} is missing (install chromium, or set APALIS_CHROMIUM; APALIS_BROWSER_TEST=required makes this a failure)`,
  );
}
const README_SCREENSHOT = new URL("../../docs/board-overview.png", import.meta.url);
/** Generous bound for anything the browser waits for (liveness, not speed). */
const WAIT_MS = 15_000;
/** The live refresh interval of the boards under test. */
const REFRESH_MS = 250;

const MALICIOUS_TO = `<script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2">`;
/** Breaks out of an attribute and tries a dialog, to make "no dialog but confirm" meaningful. */
const MALICIOUS_SUBJECT = `"><svg onload="alert(document.domain)"></svg>'\`<b>bold</b>`;

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Fails with a clear message when CI requires the browser tests and there is no Chromium. */
function requireChromium(): void {
  if (!HAS_CHROMIUM) {
    throw new Error(
      `Cannot run the browser test: no Chromium at '${CHROMIUM}' and APALIS_BROWSER_TEST=required (install it with 'apt-get install -y chromium', or point APALIS_CHROMIUM at one)`,
    );
  }
}

/** A board served on a free port until disposed. */
interface ServedBoard extends AsyncDisposable {
  url: string;
}

async function startBoard(db: Database, options: ServeBoardOptions = {}): Promise<ServedBoard> {
  const stop = new AbortController();
  const { promise: listening, resolve, reject } = Promise.withResolvers<number>();
  const served = serveBoard(db, {
    refreshMs: REFRESH_MS,
    ...options,
    port: 0,
    signal: stop.signal,
    onListen: ({ port }) => resolve(port),
  });
  served.catch(reject);
  const port = await listening;
  return {
    url: `http://127.0.0.1:${port}`,
    async [Symbol.asyncDispose]() {
      stop.abort();
      await served;
    },
  };
}

/** Chromium, closed when disposed. */
async function launchBrowser(): Promise<Browser & AsyncDisposable> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox"],
  });
  return Object.assign(browser, { [Symbol.asyncDispose]: () => browser.close() });
}

/** What a page said that a test must look at: script errors, console errors, dialogs. */
interface Watched {
  /** Console errors and uncaught page errors (a CSP violation is a console error). */
  problems: string[];
  dialogs: { type: string; message: string }[];
  /** What the next confirm dialog is answered (other dialogs are dismissed). */
  confirmAnswer: boolean;
}

function watch(page: Page): Watched {
  const watched: Watched = { problems: [], dialogs: [], confirmAnswer: true };
  page.on("console", (message) => {
    if (message.type() === "error") {
      watched.problems.push(`console error at ${page.url()}: ${message.text()}`);
    }
  });
  page.on("pageerror", (error) => {
    watched.problems.push(`page error at ${page.url()}: ${error.message}`);
  });
  page.on("dialog", async (dialog) => {
    watched.dialogs.push({ type: dialog.type(), message: dialog.message() });
    if (dialog.type() === "confirm" && watched.confirmAnswer) await dialog.accept();
    else await dialog.dismiss();
  });
  return watched;
}

/** `window.__pwned`, which only an injected script could set. */
function pwned(page: Page): Promise<unknown> {
  return page.evaluate(() => (globalThis as { __pwned?: unknown }).__pwned);
}

/** How many live refreshes the page has applied (`body[data-refreshes]`). */
async function refreshes(page: Page): Promise<number> {
  return Number(await page.locator("body").getAttribute("data-refreshes") ?? "0");
}

async function text(page: Page, selector: string): Promise<string> {
  return (await page.locator(selector).textContent())?.trim() ?? "";
}

interface Seeded {
  emails: SqliteStorage<{ to: string; subject?: string; bounce?: boolean }>;
  delivered: string[];
  bounced: string;
  malicious: string;
  runId: string;
  nodes: string[];
}

/** An email queue (done tasks, a killed one, a malicious one) and a finished DAG run. */
async function seed(db: Database): Promise<Seeded> {
  const emails = new SqliteStorage<{ to: string; subject?: string; bounce?: boolean }>(
    db,
    "email",
  );
  const delivered: string[] = [];
  for (let i = 1; i <= 6; i++) delivered.push(await emails.push({ to: `user${i}@example.com` }));
  const bounced = await emails.push({ to: "nobody@example.com", bounce: true });
  const mailer = new WorkerBuilder("mailer")
    .backend(emails)
    .concurrency(2)
    .handleSignals(false)
    .build((email) => {
      if (email.bounce) throw new AbortError(`mailbox ${email.to} does not exist`);
      return `sent to ${email.to}`;
    });
  await runUntilFinished(mailer, emails, [...delivered, bounced]);
  const malicious = await emails.push({ to: MALICIOUS_TO, subject: MALICIOUS_SUBJECT });

  const etl = new SqliteStorage<unknown>(db, "etl");
  const dag = new DagFlow("user-etl");
  const name = dag.addNode("name", (id: number) => `user-${id}`);
  const age = dag.addNode("age", (id: number) => id + 20);
  dag.addNode("collect", ([n, a]: [string, number]) => `${n} is ${a}`).dependsOn([name, age]);
  dag.validate();
  const runId = await etl.startFanOut([1, 2]);
  const worker = new WorkerBuilder("etl-worker").backend(etl).handleSignals(false).build(dag);
  await worker.runUntil(etl.waitForRun(runId, { timeoutMs: WAIT_MS }));
  const run = await etl.workflowRun(runId);
  assert.equal(run?.status, "done", `the seeded DAG run ended ${run?.status}`);
  return { emails, delivered, bounced, malicious, runId, nodes: ["name", "age", "collect"] };
}

Deno.test({
  name:
    `serveBoard() serves pages Chromium can browse, act on and refresh live, with no script error and no injection${SKIPPED}`,
  ignore: IGNORE,
  async fn() {
    requireChromium();
    await using tmp = await tempDatabase();
    const data = await seed(tmp.db);
    await using board = await startBoard(tmp.db);
    await using browser = await launchBrowser();
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const watched = watch(page);
    const at = (path: string) => `${board.url}${path}`;

    // Overview: the queue's row with its counts, and bars in the throughput chart.
    await page.goto(at("/"));
    const row = page.locator('tr[data-queue="email"]');
    await row.waitFor();
    assert.equal(await row.locator("a.queue-link").textContent(), "email");
    assert.equal(
      await text(page, 'tr[data-queue="email"] a[href="/queues/email?status=done"]'),
      "6",
    );
    assert.equal(
      await text(page, 'tr[data-queue="email"] a[href="/queues/email?status=killed"]'),
      "1",
    );
    assert.ok(
      await page.locator("svg.chart.wide rect.bar-done").count() >= 1,
      "the throughput chart has no done bar",
    );
    assert.ok(await page.locator("svg.chart.wide rect.bar-failed").count() >= 1);
    assert.equal(await pwned(page), undefined);

    // Screenshot of the overview, in the test's temp dir.
    const shot = `${tmp.dir}/overview.png`;
    await page.screenshot({ path: shot });
    const png = await Deno.readFile(shot);
    assert.ok(png.length > 10 * 1024, `the screenshot has only ${png.length} bytes`);
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

    // Queue, killed tab, the killed task.
    await row.locator("a.queue-link").click();
    await page.waitForURL(at("/queues/email"));
    await page.locator('.tabs a[data-status="killed"]').click();
    await page.waitForURL(at("/queues/email?status=killed"));
    assert.equal(await page.locator("tr[data-task]").count(), 1);
    assert.equal(await page.locator("tr[data-task]").getAttribute("data-task"), data.bounced);
    await page.locator(`tr[data-task="${data.bounced}"] a.task-link`).click();
    await page.waitForURL(at(`/tasks/${data.bounced}`));
    assert.equal(await text(page, '[data-field="status"]'), "killed");
    assert.match(await text(page, 'pre[data-field="error"]'), /nobody@example\.com does not exist/);

    // Delete asks first; dismissing the question sends nothing.
    watched.confirmAnswer = false;
    await page.locator('button[data-action="delete"]').click();
    assert.deepEqual(watched.dialogs, [
      { type: "confirm", message: `Delete task ${data.bounced}? This cannot be undone.` },
    ]);
    // A form submitted in spite of the answer would have reached the board by now (this wait
    // can only hide such a bug on a very slow machine, never fail a correct board).
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(page.url(), at(`/tasks/${data.bounced}`));
    assert.equal((await data.emails.fetchById(data.bounced))?.status, "killed");

    // Retry, accepting the question: the task is pending again and the page says so.
    watched.confirmAnswer = true;
    await page.locator('button[data-action="retry"]').click();
    await page.waitForURL(at(`/tasks/${data.bounced}?notice=retried`));
    assert.deepEqual(watched.dialogs.slice(1), [
      { type: "confirm", message: `Retry task ${data.bounced}?` },
    ]);
    assert.equal(await text(page, '[data-field="status"]'), "pending");
    assert.match(await text(page, ".notice"), /^Retried: the task is pending again/);
    assert.equal((await data.emails.fetchById(data.bounced))?.status, "pending");
    assert.equal(
      await page.locator('button[data-action="kill"]').count(),
      1,
      "a pending task can be killed",
    );

    // The malicious payload is shown as text, and nothing in it ran, also after live refreshes.
    await page.goto(at(`/tasks/${data.malicious}`));
    const args = await page.locator('pre[data-field="args"]').textContent();
    assert.equal(args, JSON.stringify({ to: MALICIOUS_TO, subject: MALICIOUS_SUBJECT }, null, 2));
    assert.ok(args?.includes(`"to": ${JSON.stringify(MALICIOUS_TO)}`));
    assert.ok(args?.includes("<script>window.__pwned = 1</script><img src=x onerror="));
    const shown = await refreshes(page);
    await waitUntil(async () => await refreshes(page) > shown, "a live refresh", WAIT_MS);
    assert.equal(
      await page.locator('pre[data-field="args"]').textContent(),
      args,
      "a live refresh changed the payload's text",
    );
    assert.equal(await page.locator("main img, main svg[onload], main b").count(), 0);
    assert.equal(await pwned(page), undefined);

    // Live refresh on the queue page: a task pushed now shows up without a navigation.
    await page.goto(at("/queues/email"));
    await page.locator(`tr[data-task="${data.malicious}"]`).waitFor();
    await page.evaluate(() => (globalThis as { __samePage?: boolean }).__samePage = true);
    const before = await refreshes(page);
    const late = await data.emails.push({ to: "late@example.com" });
    await page.waitForSelector(`tr[data-task="${late}"]`, { timeout: WAIT_MS });
    assert.ok(await refreshes(page) > before, "body[data-refreshes] did not increase");
    assert.equal(
      await page.evaluate(() => (globalThis as { __samePage?: boolean }).__samePage),
      true,
      "the page was reloaded instead of refreshed in place",
    );
    assert.equal(page.url(), at("/queues/email"));
    assert.equal(await pwned(page), undefined);

    // The run's graph: every node done.
    await page.goto(at("/runs"));
    await page.locator(`tr[data-run="${data.runId}"] a`).first().click();
    await page.waitForURL(at(`/runs/${data.runId}`));
    const nodes = page.locator("svg.graph g.node");
    assert.deepEqual(
      (await nodes.evaluateAll((gs) => gs.map((g) => g.getAttribute("data-node")))).sort(),
      [...data.nodes].sort(),
    );
    for (const node of data.nodes) {
      const classes = await page.locator(`svg.graph g.node[data-node="${node}"]`).getAttribute(
        "class",
      );
      assert.deepEqual(classes?.split(/\s+/).sort(), ["n-done", "node"], `node ${node}`);
    }

    assert.deepEqual(watched.dialogs.map((d) => d.type), ["confirm", "confirm"]);
    assert.deepEqual(watched.problems, []);
  },
});

Deno.test({
  name:
    `serveBoard() with a token shows Chromium a login page, refuses a wrong token and lands on the overview with the right one${SKIPPED}`,
  ignore: IGNORE,
  async fn() {
    requireChromium();
    await using tmp = await tempDatabase();
    await new SqliteStorage<unknown>(tmp.db, "reports").push({ report: "daily" });
    const token = "correct horse battery staple";
    // Stopped halfway through (a restart); disposing it again at the end does nothing.
    await using first = await startBoard(tmp.db, { token });
    await using browser = await launchBrowser();
    const context = await browser.newContext();
    const page = await context.newPage();
    const watched = watch(page);

    await page.goto(`${first.url}/`);
    await page.waitForURL(`${first.url}/login?next=%2F`);
    assert.equal(await text(page, "h1"), "Log in");
    assert.equal(await page.locator('tr[data-queue="reports"]').count(), 0);

    // What is typed survives the page's live refresh interval.
    await page.locator("input#token").fill("wrong token");
    await new Promise((resolve) => setTimeout(resolve, REFRESH_MS * 4));
    assert.equal(await page.locator("input#token").inputValue(), "wrong token");
    await page.locator('button[type="submit"].primary').click();
    await page.locator(".notice.error").waitFor();
    assert.equal(await text(page, ".notice.error"), "Wrong token.");
    assert.equal(await page.locator('tr[data-queue="reports"]').count(), 0);

    await page.locator("input#token").fill(token);
    const loggedInAt = Date.now();
    await page.locator('button[type="submit"].primary').click();
    await page.waitForURL(`${first.url}/`);
    await page.locator('tr[data-queue="reports"] a.queue-link').waitFor();
    assert.equal(await text(page, "h1"), "Overview");

    // The cookie: signed (issued-at.HMAC), not the token nor a digest of it alone, hidden from
    // scripts, sent only by the board's own pages, and dropped by the browser after 12 hours.
    const cookies = await context.cookies(first.url);
    assert.equal(cookies.length, 1, JSON.stringify(cookies));
    const cookie = cookies[0]!;
    assert.equal(cookie.name, "apalis_board");
    assert.match(cookie.value, /^[0-9a-z]+\.[A-Za-z0-9_-]{43}$/);
    assert.ok(!cookie.value.includes("horse"));
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, "Strict");
    const lifetime = cookie.expires * 1000 - loggedInAt;
    assert.ok(Math.abs(lifetime - 12 * 3_600_000) < 60_000, `the cookie lasts ${lifetime} ms`);
    assert.equal(
      await page.evaluate(() =>
        (globalThis as unknown as { document: { cookie: string } }).document.cookie
      ),
      "",
      "HttpOnly: no script reads it",
    );

    // A restarted board (same database, same token) no longer takes the cookie: log in again.
    // The browser sends it to the new port too (cookies do not depend on the port). The page
    // leaves the first board before it stops, or its live refresh would find it gone.
    await page.goto("about:blank");
    await first[Symbol.asyncDispose]();
    await using second = await startBoard(tmp.db, { token });
    await page.goto(`${second.url}/`);
    await page.waitForURL(`${second.url}/login?next=%2F`);
    assert.equal(await text(page, "h1"), "Log in");
    await page.locator("input#token").fill(token);
    await page.locator('button[type="submit"].primary').click();
    await page.waitForURL(`${second.url}/`);
    await page.locator('tr[data-queue="reports"] a.queue-link').waitFor();

    // Logging out drops the cookie, and the board asks for the token again.
    await page.locator('header form[action="/logout"] button').click();
    await page.waitForURL(`${second.url}/login`);
    assert.deepEqual(await context.cookies(second.url), []);
    await page.goto(`${second.url}/workers`);
    await page.waitForURL(`${second.url}/login?next=%2Fworkers`);

    // The wrong token's page is a 401, which Chromium reports on the console; nothing else.
    assert.deepEqual(
      watched.problems.filter((p) => !/status of 401/.test(p)),
      [],
    );
    assert.deepEqual(watched.dialogs, []);
  },
});

Deno.test({
  name:
    `serveBoard() without a token refuses a page whose domain was rebound to 127.0.0.1, in Chromium${SKIPPED}`,
  ignore: IGNORE,
  async fn() {
    requireChromium();
    await using tmp = await tempDatabase();
    const secrets = new SqliteStorage<{ card: string }>(tmp.db, "billing");
    const id = await secrets.push({ card: "4111 1111 1111 1111" });
    await using board = await startBoard(tmp.db);
    const port = new URL(board.url).port;
    // What a rebinding attack achieves: the attacker's name resolves to this machine.
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--host-resolver-rules=MAP rebind.attacker.test 127.0.0.1",
      ],
    });
    await using _browser = { [Symbol.asyncDispose]: () => browser.close() };
    const page = await browser.newPage();

    const attacked = await page.goto(`http://rebind.attacker.test:${port}/queues/billing`);
    assert.equal(attacked?.status(), 403);
    assert.match(await page.locator("body").textContent() ?? "", /does not answer to the host/);
    // The attacker's script, same-origin with "its" site, tries the API: read and delete.
    const tried = await page.evaluate(async (taskId) => {
      const read = await fetch(`/api/tasks/${taskId}`);
      const remove = await fetch(`/api/tasks/${taskId}/delete`, { method: "POST" });
      return { read: read.status, body: await read.text(), remove: remove.status };
    }, id);
    assert.equal(tried.read, 403);
    assert.doesNotMatch(tried.body, /4111/);
    assert.equal(tried.remove, 403);
    assert.equal((await secrets.fetchById(id))?.status, "pending", "nothing was deleted");

    // The same board, reached by a loopback name, works.
    const local = await page.goto(`http://localhost:${port}/queues/billing`);
    assert.equal(local?.status(), 200);
    await page.locator(`tr[data-task="${id}"]`).waitFor();
  },
});

/** A clock `offsetMs` behind the real one: outcomes recorded in past minutes, by real code. */
class ShiftedClock implements Clock {
  offsetMs = 0;
  now(): number {
    return Date.now() - this.offsetMs;
  }
}

/** A worker, whatever its task type. */
type Runnable = Pick<Worker<never>, "run" | "stop">;

/** A small deterministic PRNG (mulberry32), so the screenshot's data is the same every run. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Seeds four queues with an hour of history (by real workers on a clock that is moved back, so
 * every outcome is recorded by the real code), then leaves busy workers with a backlog running
 * until disposed.
 */
async function seedRealistic(db: Database): Promise<AsyncDisposable> {
  const clock = new ShiftedClock();
  const rand = random(7);
  const email = new SqliteStorage<{ to: string; template: string }>(db, "email", { clock });
  const reports = new SqliteStorage<{ report: string; day: string }>(db, "reports", { clock });
  const etl = new SqliteStorage<{ table: string; batch: number }>(db, "etl", { clock });
  const webhooks = new SqliteStorage<{ url: string; event: string }>(db, "webhooks", { clock });
  const retry = { backoff: { initialMs: 25 * 60_000, factor: 2, jitter: 0 } };
  const history: Runnable[] = [
    new WorkerBuilder("mailer-a").backend(email).concurrency(4).retry(retry).handleSignals(false)
      .build(() => {
        if (rand() < 0.05) throw new Error("SMTP 451 4.7.1: try again later");
      }),
    new WorkerBuilder("reporter-a").backend(reports).retry(retry).handleSignals(false)
      .build(() => {
        if (rand() < 0.1) throw new Error("warehouse query timed out after 30 s");
      }),
    new WorkerBuilder("etl-a").backend(etl).concurrency(2).retry(retry).handleSignals(false)
      .build(() => {
        if (rand() < 0.03) throw new AbortError("duplicate key in staging table");
      }),
  ];
  const running = history.map((worker) => worker.run());
  const templates = ["welcome", "receipt", "password-reset", "digest"];
  const tables = ["orders", "customers", "invoices", "events"];
  const ended = async (storage: SqliteStorage<unknown>, ids: string[]) => {
    await waitUntil(
      async () => {
        for (const id of ids) {
          const status = (await storage.fetchById(id))?.status;
          if (status !== "done" && status !== "failed" && status !== "killed") return false;
        }
        return true;
      },
      "a minute's tasks to end",
      60_000,
    );
  };
  const batch = async <T>(storage: SqliteStorage<T>, count: number, make: () => T) => {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) ids.push(await storage.push(make(), { maxAttempts: 3 }));
    await ended(storage as SqliteStorage<unknown>, ids);
  };
  let n = 0;
  for (let minute = 58; minute >= 0; minute--) {
    clock.offsetMs = minute * 60_000;
    const wave = 1 + Math.sin(minute / 6);
    await batch(email, Math.round(4 + 6 * wave + 4 * rand()), () => ({
      to: `user${++n}@example.com`,
      template: templates[n % templates.length]!,
    }));
    if (minute % 5 === 0) {
      await batch(reports, 2 + Math.round(3 * rand()), () => ({
        report: "revenue",
        day: new Date(clock.now()).toISOString().slice(0, 10),
      }));
    }
    await batch(etl, Math.round(2 + 4 * rand()), () => ({
      table: tables[++n % tables.length]!,
      batch: n,
    }));
  }
  await Promise.all(history.map((worker) => worker.stop()));
  await Promise.all(running);

  // Now: webhooks nobody consumes, a backlog of mail, scheduled reports, and busy workers.
  clock.offsetMs = 23 * 60_000;
  for (let i = 1; i <= 3; i++) {
    await webhooks.push({ url: "https://hooks.example.com/orders", event: `order.paid.${i}` });
  }
  clock.offsetMs = 4 * 60_000 + 12_000;
  for (let i = 0; i < 40; i++) {
    await email.push({ to: `user${++n}@example.com`, template: "digest" });
  }
  clock.offsetMs = 0;
  for (let i = 0; i < 8; i++) {
    await reports.push({ report: "weekly", day: "next monday" }, { runAfter: 3_600_000 });
  }
  for (let i = 0; i < 3; i++) await reports.push({ report: "usage", day: "today" });
  const { promise: released, resolve: release } = Promise.withResolvers<void>();
  const busy = async () => {
    await released;
  };
  const live: Runnable[] = [
    new WorkerBuilder("mailer-b").backend(email).concurrency(4).handleSignals(false).build(busy),
    new WorkerBuilder("mailer-c").backend(email).concurrency(4).handleSignals(false).build(busy),
    new WorkerBuilder("reporter-b").backend(reports).concurrency(2).handleSignals(false)
      .build(busy),
  ];
  const liveRuns = live.map((worker) => worker.run());
  await waitUntil(async () => {
    const counts = (await email.listQueues()).map((queue) => queue.counts.running);
    return counts.reduce((a, b) => a + b, 0) === 10;
  }, "the live workers to pick up tasks");
  return {
    async [Symbol.asyncDispose]() {
      release();
      await Promise.all(live.map((worker) => worker.stop()));
      await Promise.all(liveRuns);
    },
  };
}

const SCREENSHOT_NOTE = IGNORE
  ? SKIPPED
  : UPDATE_SCREENSHOT
  ? ""
  : " (ignored: APALIS_UPDATE_SCREENSHOT is not 1)";

Deno.test({
  name: `board overview screenshot is written to docs/board-overview.png${SCREENSHOT_NOTE}`,
  ignore: !UPDATE_SCREENSHOT || IGNORE,
  async fn() {
    requireChromium();
    // Opened by a relative name, so the footer shows `jobs.db` rather than a temp path.
    const dir = await Deno.makeTempDir({ prefix: "apalis_screenshot_" });
    const cwd = Deno.cwd();
    Deno.chdir(dir);
    let db: Database;
    try {
      db = openDatabase("jobs.db");
    } finally {
      Deno.chdir(cwd);
    }
    await using _db = {
      async [Symbol.asyncDispose]() {
        db.close();
        await Deno.remove(dir, { recursive: true });
      },
    };
    SqliteStorage.setup(db);
    await using _work = await seedRealistic(db);
    await using board = await startBoard(db, { refreshMs: 2000 });
    await using browser = await launchBrowser();
    const page = await browser.newPage({
      viewport: { width: 1280, height: 800 },
      colorScheme: "light",
    });
    const watched = watch(page);
    await page.goto(`${board.url}/`);
    await page.locator('tr[data-queue="webhooks"]').waitFor();
    await Deno.mkdir(new URL(".", README_SCREENSHOT), { recursive: true });
    await page.screenshot({ path: README_SCREENSHOT.pathname });
    const png = await Deno.readFile(README_SCREENSHOT);
    assert.ok(png.length > 10 * 1024, `the screenshot has only ${png.length} bytes`);
    assert.deepEqual(watched.problems, []);
  },
});
