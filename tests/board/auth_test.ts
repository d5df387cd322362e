import assert from "node:assert/strict";
import { type BoardHandler, type BoardOptions, createBoardHandler } from "../../board.ts";
import { LoginThrottle } from "../../lib/board/throttle.ts";
import { FakeClock, tempDatabase } from "../_helpers.ts";
import { serveOnFreePort } from "./http.ts";

const TOKEN = "s3cret";
const HOUR = 3_600_000;

/** A request from `address` (what `Deno.serve` passes as the handler's second argument). */
function from(address: string) {
  return { remoteAddr: { transport: "tcp" as const, hostname: address, port: 40_000 } };
}

function login(board: BoardHandler, token: string, address = "192.0.2.1") {
  return board(
    new Request("http://localhost/login", {
      method: "POST",
      body: new URLSearchParams({ token, next: "/" }),
    }),
    from(address),
  );
}

function api(board: BoardHandler, headers: HeadersInit = {}, address = "192.0.2.1") {
  return board(new Request("http://localhost/api/overview", { headers }), from(address));
}

/** The `name=value` part of a login's `Set-Cookie`. */
async function session(board: BoardHandler): Promise<{ cookie: string; setCookie: string }> {
  const response = await login(board, TOKEN);
  assert.equal(response.status, 303);
  const setCookie = response.headers.get("set-cookie") ?? "";
  return { cookie: setCookie.split(";")[0]!, setCookie };
}

async function sha256Hex(text: string): Promise<string> {
  const bytes = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function boardWith(db: BoardOptions & { db: Parameters<typeof createBoardHandler>[0] }) {
  const { db: database, ...options } = db;
  return createBoardHandler(database, { token: TOKEN, ...options });
}

Deno.test("createBoardHandler() login cookie cannot be derived from the token and is signed for this board start only", async () => {
  await using temp = await tempDatabase();
  const board = boardWith({ db: temp.db });
  const { cookie } = await session(board);
  assert.equal((await api(board, { cookie })).status, 200);

  const value = cookie.slice(cookie.indexOf("=") + 1);
  assert.notEqual(value, await sha256Hex(`apalis-board:${TOKEN}`));
  assert.doesNotMatch(value, new RegExp(TOKEN));
  // Whoever knows the token could compute the old cookie; it must open nothing.
  const derived = `apalis_board=${await sha256Hex(`apalis-board:${TOKEN}`)}`;
  assert.equal((await api(board, { cookie: derived })).status, 401);

  // A tampered cookie (another issue time, or a changed signature) is refused.
  const [issued, signature] = value.split(".");
  assert.ok(issued && signature, `the cookie is issued-at.signature: ${value}`);
  const flipped = (signature.startsWith("A") ? "B" : "A") + signature.slice(1);
  assert.equal((await api(board, { cookie: `apalis_board=${issued}.${flipped}` })).status, 401);
  const later = (parseInt(issued, 36) + HOUR).toString(36);
  assert.equal((await api(board, { cookie: `apalis_board=${later}.${signature}` })).status, 401);

  // A restart (a new handler over the same database and token) logs everyone out.
  const restarted = boardWith({ db: temp.db });
  assert.equal((await api(restarted, { cookie })).status, 401);
  const page = await restarted(new Request("http://localhost/workers", { headers: { cookie } }));
  assert.equal(page.status, 303);
  assert.match(page.headers.get("location") ?? "", /^\/login\?next=/);
});

Deno.test("createBoardHandler() login cookie expires after sessionMs (12 hours by default), in the browser and on the board", async () => {
  await using temp = await tempDatabase();
  const clock = new FakeClock();
  const board = boardWith({ db: temp.db, clock });
  const { cookie, setCookie } = await session(board);
  assert.match(setCookie, /; Max-Age=43200(;|$)/);
  assert.match(setCookie, /HttpOnly/);
  assert.match(setCookie, /SameSite=Strict/);
  clock.advance(12 * HOUR - 1000);
  assert.equal((await api(board, { cookie })).status, 200);
  clock.advance(1000);
  assert.equal((await api(board, { cookie })).status, 401, "expired after 12 hours");

  const short = boardWith({ db: temp.db, clock, sessionMs: 60_000 });
  const brief = await session(short);
  assert.match(brief.setCookie, /; Max-Age=60(;|$)/);
  clock.advance(59_000);
  assert.equal((await api(short, { cookie: brief.cookie })).status, 200);
  clock.advance(1_000);
  assert.equal((await api(short, { cookie: brief.cookie })).status, 401);

  for (const sessionMs of [0, 999, 1.5, Number.NaN, 401 * 24 * HOUR]) {
    assert.throws(
      () => createBoardHandler(temp.db, { token: TOKEN, sessionMs }),
      (error: unknown) => error instanceof RangeError && /'sessionMs'/.test(error.message),
      String(sessionMs),
    );
  }
});

Deno.test("createBoardHandler() slows failed logins per client address: 429 with Retry-After, the right token refused while blocked, other addresses unaffected", async () => {
  await using temp = await tempDatabase();
  const clock = new FakeClock();
  const board = boardWith({ db: temp.db, clock });
  for (let i = 1; i <= 5; i++) {
    const wrong = await login(board, `guess-${i}`);
    assert.equal(wrong.status, 401, `failure ${i} is answered at once`);
  }
  const blocked = await login(board, TOKEN);
  assert.equal(blocked.status, 429, "even the right token waits: the answer must not tell");
  assert.equal(blocked.headers.get("retry-after"), "1");
  assert.match(await blocked.text(), /Too many failed attempts/);
  assert.equal((await api(board, { authorization: `Bearer ${TOKEN}` })).status, 429);

  // Another address is not held up by this one.
  assert.equal((await login(board, "nope", "198.51.100.9")).status, 401);
  assert.equal((await login(board, TOKEN, "198.51.100.9")).status, 303);

  clock.advance(1000);
  assert.equal((await login(board, TOKEN)).status, 303, "the wait is over");
  // A success does not wipe the count: behind a proxy, an attacker shares the operator's address.
  assert.equal((await login(board, "x")).status, 401);
  const again = await login(board, "x");
  assert.equal(again.status, 429);
  assert.equal(again.headers.get("retry-after"), "2");
});

Deno.test("createBoardHandler() doubles the wait with each further failure, up to 60 s, and forgets failures after 15 minutes", async () => {
  await using temp = await tempDatabase();
  const clock = new FakeClock();
  const board = boardWith({ db: temp.db, clock });
  const bearer = (token: string) => api(board, { authorization: `Bearer ${token}` });
  for (let i = 1; i <= 5; i++) assert.equal((await bearer("wrong")).status, 401);
  const waits: string[] = [];
  for (let i = 0; i < 9; i++) {
    const response = await bearer("wrong");
    assert.equal(response.status, 429);
    const wait = response.headers.get("retry-after")!;
    waits.push(wait);
    clock.advance(Number(wait) * 1000);
    assert.equal((await bearer("wrong")).status, 401, "one more try once the wait is over");
  }
  assert.deepEqual(waits, ["1", "2", "4", "8", "16", "32", "60", "60", "60"]);
  assert.match(
    (await (await bearer(TOKEN)).json()).error,
    /Too many failed attempts.*60 s/,
  );
  clock.advance(60_000);
  assert.equal((await bearer(TOKEN)).status, 200, "never locked out for good");

  clock.advance(15 * 60_000);
  for (let i = 1; i <= 5; i++) {
    assert.equal((await bearer("wrong")).status, 401, "failures 15 minutes old are forgotten");
  }
});

Deno.test("LoginThrottle keeps at most 10,000 addresses, groups IPv6 addresses by /64, and makes every address wait when many fail at once", () => {
  const clock = new FakeClock();
  const throttle = new LoginThrottle(clock);
  for (let i = 0; i < 30_000; i++) throttle.failed(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
  assert.ok(throttle.size <= 10_000, `${throttle.size} addresses kept`);

  const fresh = new LoginThrottle(clock);
  for (let i = 0; i < 5; i++) fresh.failed("2001:db8:1:2::10");
  assert.ok(fresh.waitMs("2001:db8:1:2:ffff::1") > 0, "the same /64");
  assert.equal(fresh.waitMs("2001:db8:1:3::10"), 0, "another /64");

  // Many addresses failing within a minute (a spread-out guess): each failure then makes its
  // address wait, but an address that has not failed is never refused.
  const busy = new LoginThrottle(clock);
  for (let i = 0; i < 100; i++) busy.failed(`203.0.113.${i}`);
  assert.equal(busy.waitMs("198.51.100.1"), 0);
  busy.failed("198.51.100.1");
  assert.ok(busy.waitMs("198.51.100.1") > 0, "one failure is enough while many fail");
  clock.advance(61_000);
  busy.failed("198.51.100.2");
  assert.equal(busy.waitMs("198.51.100.2"), 0, "a minute later the free attempts are back");
});

Deno.test("serveBoard() slows failed logins over real HTTP, keyed by the client's address", async () => {
  await using temp = await tempDatabase();
  await using board = await serveOnFreePort(temp.db, { token: TOKEN });
  const url = `http://127.0.0.1:${board.port}`;
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) {
    const response = await fetch(`${url}/api/overview`, {
      headers: { authorization: "Bearer wrong" },
    });
    statuses.push(response.status);
    await response.body?.cancel();
  }
  assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429]);
  const page = await fetch(`${url}/login`, {
    method: "POST",
    body: new URLSearchParams({ token: TOKEN }),
    redirect: "manual",
  });
  assert.equal(page.status, 429);
  assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
  assert.match(await page.text(), /Too many failed attempts/);
});
