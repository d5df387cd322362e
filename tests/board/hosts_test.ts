/**
 * DNS rebinding: a page on an attacker's domain that resolves to 127.0.0.1 reaches the board
 * with its own name in `Host` (and, for its writes, in `Origin`). These tests send such requests
 * over real TCP to boards served by `serveBoard`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createBoardHandler } from "../../board.ts";
import { SqliteStorage } from "../../mod.ts";
import { tempDatabase } from "../_helpers.ts";
import { rawRequest, serveOnFreePort } from "./http.ts";

/** Every kind of route: pages, the API, assets, the login page. */
const PATHS = ["/", "/queues/email", "/api/overview", "/assets/board.css", "/login", "/workers"];

function supportsIpv6(): boolean {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
}

Deno.test("serveBoard() on 127.0.0.1 refuses with 403 every request whose Host is not a loopback name, before any route runs", async () => {
  await using temp = await tempDatabase();
  const email = new SqliteStorage<{ to: string }>(temp.db, "email");
  const id = await email.push({ to: "secret@example.com" });
  await using board = await serveOnFreePort(temp.db);
  const { port } = board;

  for (
    const host of [
      `rebind.attacker.example:${port}`,
      "rebind.attacker.example",
      `localhost.attacker.example:${port}`,
      `127.0.0.1.nip.io:${port}`,
      `192.0.2.7:${port}`,
      `[2001:db8::1]:${port}`,
    ]
  ) {
    for (const path of [...PATHS, `/tasks/${id}`, `/api/tasks/${id}`]) {
      const response = await rawRequest(board, { host, path });
      assert.equal(response.status, 403, `${host} ${path}`);
      assert.doesNotMatch(response.body, /secret@example\.com/, `${host} ${path}`);
      assert.match(response.body, /--allow-host|allowedHosts/, "the refusal says how to allow it");
    }
    // The attacker's page posting to "its own" origin: refused before the delete runs.
    for (const path of [`/api/tasks/${id}/delete`, `/tasks/${id}/delete`]) {
      const response = await rawRequest(board, {
        host,
        path,
        method: "POST",
        headers: { origin: `http://${host}` },
        body: "",
      });
      assert.equal(response.status, 403, `POST ${host} ${path}`);
    }
    const login = await rawRequest(board, {
      host,
      path: "/login",
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "token=x",
    });
    assert.equal(login.status, 403, `login ${host}`);
  }
  assert.equal((await email.fetchById(id))?.status, "pending", "nothing was deleted");

  for (
    const host of [
      `localhost:${port}`,
      "localhost",
      `LocalHost:${port}`,
      `127.0.0.1:${port}`,
      "127.0.0.1",
      `[::1]:${port}`,
      `board.localhost:${port}`,
    ]
  ) {
    for (const path of PATHS) {
      const response = await rawRequest(board, { host, path });
      // Without a token, the login page sends the browser to the overview.
      assert.equal(response.status, path === "/login" ? 303 : 200, `${host} ${path}`);
    }
    const task = await rawRequest(board, { host, path: `/api/tasks/${id}` });
    assert.equal(JSON.parse(task.body).args.to, "secret@example.com", host);
  }
  const deleted = await rawRequest(board, {
    host: `localhost:${port}`,
    path: `/api/tasks/${id}/delete`,
    method: "POST",
    headers: { origin: `http://localhost:${port}` },
    body: "",
  });
  assert.equal(deleted.status, 200, "the board's own origin still acts");
  assert.equal(await email.fetchById(id), undefined);
});

Deno.test("serveBoard() with allowedHosts answers those names (a leading dot: the domain and its subdomains) and no others", async () => {
  await using temp = await tempDatabase();
  await using board = await serveOnFreePort(temp.db, {
    allowedHosts: ["board.example.com", ".corp.example"],
  });
  const { port } = board;
  for (
    const host of [
      `board.example.com:${port}`,
      "BOARD.example.com",
      `corp.example:${port}`,
      `jobs.corp.example:${port}`,
      `a.b.corp.example`,
      `localhost:${port}`,
    ]
  ) {
    assert.equal((await rawRequest(board, { host, path: "/api/overview" })).status, 200, host);
  }
  for (
    const host of [
      `example.com:${port}`,
      `evil.board.example.com:${port}`,
      `board.example.com.evil.example:${port}`,
      `evilcorp.example:${port}`,
      `corp.example.evil:${port}`,
    ]
  ) {
    assert.equal((await rawRequest(board, { host, path: "/api/overview" })).status, 403, host);
  }
});

const IPV6 = supportsIpv6();

Deno.test({
  name: `serveBoard() on [::1] answers loopback names and refuses others${
    IPV6 ? "" : " (ignored: this machine has no IPv6 loopback)"
  }`,
  ignore: !IPV6,
  async fn() {
    await using temp = await tempDatabase();
    await using board = await serveOnFreePort(temp.db, { hostname: "::1" });
    const { port } = board;
    assert.equal(board.hostname, "::1");
    for (const host of [`[::1]:${port}`, `localhost:${port}`, `127.0.0.1:${port}`]) {
      assert.equal((await rawRequest(board, { host, path: "/" })).status, 200, host);
    }
    for (const host of [`rebind.attacker.example:${port}`, `[2001:db8::1]:${port}`]) {
      assert.equal((await rawRequest(board, { host, path: "/" })).status, 403, host);
    }
  },
});

Deno.test("serveBoard() on 0.0.0.0 also answers IP addresses (which DNS cannot rebind) but refuses other names", async () => {
  await using temp = await tempDatabase();
  await using board = await serveOnFreePort(temp.db, {
    hostname: "0.0.0.0",
    token: "s3cret",
    allowedHosts: ["jobs.example.com"],
  });
  const { port } = board;
  const auth = { authorization: "Bearer s3cret" };
  const local = { hostname: "127.0.0.1", port };
  for (
    const host of [
      `192.0.2.7:${port}`,
      `[2001:db8::1]:${port}`,
      `localhost:${port}`,
      `jobs.example.com:${port}`,
    ]
  ) {
    const response = await rawRequest(local, { host, path: "/api/overview", headers: auth });
    assert.equal(response.status, 200, host);
  }
  const refused = await rawRequest(local, {
    host: `rebind.attacker.example:${port}`,
    path: "/api/overview",
    headers: auth,
  });
  assert.equal(refused.status, 403, "a token does not make an unknown name acceptable");
});

Deno.test("createBoardHandler() checks the request's host: loopback names by default, plus allowedHosts", async () => {
  await using temp = await tempDatabase();
  const board = createBoardHandler(temp.db);
  const status = async (url: string, headers: HeadersInit = {}) =>
    (await board(new Request(url, { headers }))).status;
  assert.equal(await status("http://localhost:8000/api/overview"), 200);
  assert.equal(await status("http://127.0.0.1/api/overview"), 200);
  assert.equal(await status("http://[::1]:8000/api/overview"), 200);
  assert.equal(await status("http://rebind.attacker.example/api/overview"), 403);
  assert.equal(await status("http://192.0.2.7/api/overview"), 403);
  assert.equal(
    await status("http://localhost/api/overview", { host: "rebind.attacker.example" }),
    403,
    "a Host header that differs from the URL is checked too",
  );

  const mounted = createBoardHandler(temp.db, { allowedHosts: ["ops.example.com"] });
  const response = await mounted(new Request("https://ops.example.com/api/overview"));
  assert.equal(response.status, 200);
  const open = createBoardHandler(temp.db, { allowedHosts: ["*"], token: "s3cret" });
  const anywhere = await open(
    new Request("https://any.example/api/overview", {
      headers: { authorization: "Bearer s3cret" },
    }),
  );
  assert.equal(anywhere.status, 200, "'*' answers any host");
});

Deno.test("createBoardHandler() throws a TypeError naming allowedHosts when an entry is not a host name", async () => {
  await using temp = await tempDatabase();
  const db = temp.db;
  for (const bad of ["", " ", "http://x.example", "x.example/path", "x.example:80", "a b", "."]) {
    assert.throws(
      () => createBoardHandler(db, { allowedHosts: [bad] }),
      (error: unknown) =>
        error instanceof TypeError && /'allowedHosts'/.test(error.message) &&
        error.message.includes(JSON.stringify(bad)),
      JSON.stringify(bad),
    );
  }
});
