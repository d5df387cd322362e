import assert from "node:assert/strict";
import { SqliteStorage } from "../../mod.ts";
import { captureIo, main } from "../../lib/cli/mod.ts";
import { tempDatabase, waitUntil } from "../_helpers.ts";
import { rawRequest } from "../board/http.ts";

Deno.test("boardCommand.run() serves the board on 127.0.0.1 until interrupted, then exits 0", async () => {
  await using temp = await tempDatabase();
  await new SqliteStorage(temp.db, "email").push({ to: "a@example.com" });
  const io = captureIo({ env: { APALIS_DB: temp.path } });
  const exit = main(["board", "--port", "0"], io);
  await waitUntil(
    () => /http:\/\/127\.0\.0\.1:\d+\//.test(io.out),
    "the board printed its address",
  );
  const url = io.out.match(/http:\/\/127\.0\.0\.1:\d+\//)![0];
  try {
    const overview = await (await fetch(`${url}api/overview`)).json();
    assert.equal(overview.queues[0].name, "email");
    assert.equal(overview.queues[0].counts.pending, 1);
    const page = await fetch(url);
    assert.match(await page.text(), /<tr data-queue="email">/);
  } finally {
    io.interrupt();
  }
  assert.equal(await exit, 0);
  assert.equal(io.err, "");
  await assert.rejects(fetch(url), "the server is closed");
});

Deno.test("boardCommand.run() requires the token from APALIS_BOARD_TOKEN and warns on a public host without one", async () => {
  await using temp = await tempDatabase();
  const io = captureIo({ env: { APALIS_DB: temp.path, APALIS_BOARD_TOKEN: "s3cret" } });
  const exit = main(["board", "--port", "0"], io);
  await waitUntil(() => /token required/.test(io.out), "the board printed its address");
  const url = io.out.match(/http:\/\/127\.0\.0\.1:\d+\//)![0];
  try {
    const refused = await fetch(`${url}api/overview`);
    assert.equal(refused.status, 401);
    await refused.body?.cancel();
    const allowed = await fetch(`${url}api/overview`, {
      headers: { authorization: "Bearer s3cret" },
    });
    assert.equal(allowed.status, 200);
    await allowed.body?.cancel();
  } finally {
    io.interrupt();
  }
  assert.equal(await exit, 0);

  const open = captureIo({ env: { APALIS_DB: temp.path } });
  const openExit = main(["board", "--port", "0", "--host", "0.0.0.0"], open);
  await waitUntil(() => open.out.includes("http://"), "the public board printed its address");
  open.interrupt();
  assert.equal(await openExit, 0);
  assert.match(open.err, /warning: the board listens on 0\.0\.0\.0 without a token/);
});

Deno.test("boardCommand.run() exits 2 with the reason when an option is invalid", async () => {
  await using temp = await tempDatabase();
  for (
    const [args, reason] of [
      [["board", "--port", "http"], /option '--port' must be an integer from 0 to 65535/],
      [["board", "--port", "70000"], /option '--port' must be an integer/],
      [["board", "--token", ""], /must not be empty/],
      [["board", "--refresh", "soon"], /--refresh/],
      [["board", "extra"], /apalis board --help/],
      [["board", "--allow-host", "http://jobs.example.com"], /option '--allow-host'.*host name/],
      [["board", "--allow-host", ""], /option '--allow-host'/],
      [["board", "--token", "t", "--session", "0s"], /option '--session' must be .*1s/],
      [["board", "--token", "t", "--session", "401d"], /option '--session' must be/],
      [["board", "--session", "1h"], /option '--session' needs a token/],
    ] as const
  ) {
    const io = captureIo({ env: { APALIS_DB: temp.path } });
    assert.equal(await main([...args], io), 2, args.join(" "));
    assert.match(io.err, reason, args.join(" "));
  }
});

/** How this process has `path` open: "r", "w" or "rw" for each of its descriptors (Linux). */
function openModes(path: string): string[] {
  const target = Deno.realPathSync(path);
  const modes: string[] = [];
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    let link: string;
    try {
      link = Deno.readLinkSync(`/proc/self/fd/${entry.name}`);
    } catch {
      continue; // closed meanwhile
    }
    if (link !== target) continue;
    const info = Deno.readTextFileSync(`/proc/self/fdinfo/${entry.name}`);
    const flags = parseInt(info.match(/^flags:\s*([0-7]+)/m)![1]!, 8);
    modes.push(["r", "w", "rw"][flags & 3]!);
  }
  return modes;
}

Deno.test({
  name:
    "boardCommand.run() reads through a read-only connection, and opens the file for writing only when a button writes",
  ignore: Deno.build.os !== "linux", // reads /proc
  async fn() {
    await using temp = await tempDatabase();
    const id = await new SqliteStorage(temp.db, "email").push({ to: "a@example.com" });
    temp.db.close();
    const io = captureIo({ env: { APALIS_DB: temp.path } });
    const exit = main(["board", "--port", "0"], io);
    await waitUntil(() => /http:\/\/127\.0\.0\.1:\d+\//.test(io.out), "the board's address");
    const url = io.out.match(/http:\/\/127\.0\.0\.1:\d+\//)![0];
    try {
      for (const page of ["", "queues/email", `tasks/${id}`, "workers", "runs", "api/overview"]) {
        const response = await fetch(`${url}${page}`);
        assert.equal(response.status, 200, page);
        await response.body?.cancel();
      }
      assert.deepEqual(openModes(temp.path), ["r"], "only a read-only connection so far");
      const killed = await fetch(`${url}api/tasks/${id}/kill`, { method: "POST" });
      assert.equal(killed.status, 200, await killed.text());
      // (SQLite keeps a closed connection's descriptor while another one in the process holds
      // locks on the file, so the read-only one may linger.)
      assert.ok(openModes(temp.path).includes("rw"), "a writable connection was opened");
      const task = await (await fetch(`${url}api/tasks/${id}`)).json();
      assert.equal(task.status, "killed");
    } finally {
      io.interrupt();
    }
    assert.equal(await exit, 0);
    assert.deepEqual(openModes(temp.path), [], "both closed");
    assert.deepEqual([...Deno.readDirSync(temp.dir)].map((e) => e.name), ["queue.db"]);
  },
});

Deno.test("boardCommand.run() answers only loopback names and the names given with --allow-host", async () => {
  await using temp = await tempDatabase();
  const io = captureIo({ env: { APALIS_DB: temp.path } });
  const exit = main(
    ["board", "--port", "0", "--allow-host", "jobs.example.com", "--allow-host", ".corp.example"],
    io,
  );
  await waitUntil(
    () => /http:\/\/127\.0\.0\.1:\d+\//.test(io.out),
    "the board printed its address",
  );
  const port = Number(io.out.match(/http:\/\/127\.0\.0\.1:(\d+)\//)![1]);
  const address = { hostname: "127.0.0.1", port };
  try {
    for (
      const host of [`localhost:${port}`, `jobs.example.com:${port}`, `ops.corp.example:${port}`]
    ) {
      assert.equal((await rawRequest(address, { host, path: "/api/overview" })).status, 200, host);
    }
    for (const host of [`rebind.attacker.example:${port}`, `192.0.2.7:${port}`]) {
      const refused = await rawRequest(address, { host, path: "/api/overview" });
      assert.equal(refused.status, 403, host);
      assert.match(refused.body, /--allow-host/);
    }
  } finally {
    io.interrupt();
  }
  assert.equal(await exit, 0);
  assert.equal(io.err, "");
});

Deno.test("boardCommand.run() warns when --allow-host '*' leaves a board without a token open to any site", async () => {
  await using temp = await tempDatabase();
  const io = captureIo({ env: { APALIS_DB: temp.path } });
  const exit = main(["board", "--port", "0", "--allow-host", "*"], io);
  await waitUntil(() => io.out.includes("http://"), "the board printed its address");
  io.interrupt();
  assert.equal(await exit, 0);
  assert.match(io.err, /warning: .*--allow-host \*.* without a token/);
});

Deno.test("boardCommand.run() --session sets how long a login lasts (the cookie's Max-Age)", async () => {
  await using temp = await tempDatabase();
  const io = captureIo({ env: { APALIS_DB: temp.path } });
  const exit = main(["board", "--port", "0", "--token", "s3cret", "--session", "30m"], io);
  await waitUntil(() => /token required/.test(io.out), "the board printed its address");
  const url = io.out.match(/http:\/\/127\.0\.0\.1:\d+\//)![0];
  try {
    const login = await fetch(`${url}login`, {
      method: "POST",
      body: new URLSearchParams({ token: "s3cret" }),
      redirect: "manual",
    });
    assert.equal(login.status, 303);
    assert.match(login.headers.get("set-cookie") ?? "", /; Max-Age=1800;/);
  } finally {
    io.interrupt();
  }
  assert.equal(await exit, 0);
});
