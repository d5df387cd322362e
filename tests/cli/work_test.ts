import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { SqliteStorage, TaskTimeoutError } from "../../mod.ts";
import { captureIo, main } from "../../lib/cli/mod.ts";
import { tempDatabase, waitUntil } from "../_helpers.ts";
import { fetch, PATH, processGone, QUEUE, run, statusesOf, storageOf, work } from "./_work.ts";

Deno.test("workCommand.run() stores each command's stdout as the result and exits 0 when interrupted", async () => {
  await using temp = await tempDatabase();
  const storage = storageOf(temp);
  const ids = await Promise.all([1, 2, 3].map((n) => storage.push({ n })));
  const { code, out, err } = await work(
    temp,
    ["--exec", "cat > /dev/null; echo ok", "--name", "w1"],
    async () => (await storage.stats()).done === 3,
  );
  assert.equal(code, 0);
  for (const id of ids) {
    const task = await fetch(storage, id);
    assert.equal(task.status, "done");
    assert.equal(task.lastResult, "ok");
    assert.equal(task.attempts, 1);
  }
  assert.match(
    out,
    /^Worker 'w1' stopped after \S+: 3 done, 0 failed, 0 killed \(\d+\.\d tasks\/s\)\n$/,
  );
  assert.match(err, /^Worker 'w1' on queue 'jobs' \(--exec, concurrency 1\); Ctrl-C to stop\n$/);
  assert.ok(!err.includes("\r"), "no status line when the output is not a terminal");
  const [worker] = await storage.listWorkers(QUEUE);
  assert.equal(worker?.name, "w1");
  assert.notEqual(worker?.stoppedAt, null);
});

Deno.test("workCommand.run() passes the payload as JSON on stdin and stores JSON output parsed", async () => {
  await using temp = await tempDatabase();
  const storage = storageOf(temp);
  const payloads = [{ to: "ada@example.com", tags: ["a", "b"] }, "plain text", 42, [1, null]];
  const ids = await Promise.all(payloads.map((p) => storage.push(p)));
  const { code } = await work(
    temp,
    ["--exec", "cat"],
    async () => (await storage.stats()).done === payloads.length,
  );
  assert.equal(code, 0);
  for (const [i, id] of ids.entries()) {
    assert.deepEqual((await fetch(storage, id)).lastResult, payloads[i]);
  }
});

Deno.test("workCommand.run() stores non-JSON output trimmed as text, and no result for no output", async () => {
  await using temp = await tempDatabase();
  const storage = storageOf(temp);
  const text = await storage.push({ kind: "text" });
  const silent = await storage.push({ kind: "silent" });
  const { code } = await work(
    temp,
    [
      "--exec",
      `if grep -q text; then printf '  line one\\nline two\\n\\n'; fi`,
    ],
    async () => (await storage.stats()).done === 2,
  );
  assert.equal(code, 0);
  assert.equal((await fetch(storage, text)).lastResult, "line one\nline two");
  assert.equal((await fetch(storage, silent)).lastResult, undefined);
});

Deno.test("workCommand.run() gives the command APALIS_TASK_ID, APALIS_ATTEMPT, APALIS_QUEUE and the parent env", async () => {
  await using temp = await tempDatabase();
  const storage = storageOf(temp);
  const id = await storage.push({});
  const { code } = await work(
    temp,
    ["--exec", `echo "$APALIS_TASK_ID $APALIS_ATTEMPT $APALIS_QUEUE $FROM_PARENT"`],
    async () => (await storage.stats()).done === 1,
    { env: { FROM_PARENT: "inherited" } },
  );
  assert.equal(code, 0);
  assert.equal((await fetch(storage, id)).lastResult, `${id} 1 ${QUEUE} inherited`);
});

Deno.test("workCommand.run() records a non-zero exit as a failed attempt with the exit code and stderr, retried after the persisted backoff", async () => {
  await using temp = await tempDatabase();
  const storage = storageOf(temp);
  const id = await storage.push({});
  const before = Date.now();
  const { code, err } = await work(
    temp,
    ["--exec", "echo 'disk full on /var' >&2; exit 3", "--backoff", "1h"],
    async () => (await fetch(storage, id)).status === "failed",
  );
  assert.equal(code, 0);
  const task = await fetch(storage, id);
  assert.equal(task.status, "failed");
  assert.equal(task.attempts, 1);
  assert.equal(task.lastError?.name, "CommandError");
  assert.equal(task.lastError?.message, "Command exited with code 3: disk full on /var");
  // 1h ± 20% jitter from the failure.
  assert.ok(task.runAt >= before + 0.8 * 3_600_000, `run_at ${task.runAt} is about 1h away`);
  assert.match(err, new RegExp(`task ${id} attempt 1/5 failed \\(retry in .+\\): CommandError`));
});

Deno.test("workCommand.run() kills a task whose command keeps failing after its attempts", async () => {
  await using temp = await tempDatabase();
  const storage = storageOf(temp);
  const id = await storage.push({}, { maxAttempts: 3 });
  const { code, out, err } = await work(
    temp,
    ["--exec", `echo "attempt $APALIS_ATTEMPT broke" >&2; exit 3`, "--backoff", "10ms"],
    async () => (await fetch(storage, id)).status === "killed",
  );
  assert.equal(code, 0);
  const task = await fetch(storage, id);
  assert.equal(task.attempts, 3);
  assert.equal(task.lastError?.message, "Command exited with code 3: attempt 3 broke");
  assert.match(err, /attempt 1\/3 failed .*attempt 1 broke\n/);
  assert.match(err, /attempt 2\/3 failed .*attempt 2 broke\n/);
  assert.match(err, /attempt 3\/3 killed: CommandError: .*attempt 3 broke\n/);
  assert.match(out, /: 0 done, 2 failed, 1 killed /);
});

Deno.test("workCommand.run() keeps only the end of a long stderr in the error", async () => {
  await using temp = await tempDatabase();
  const storage = storageOf(temp);
  const id = await storage.push({}, { maxAttempts: 1 });
  const { code } = await work(
    temp,
    [
      "--exec",
      `i=0; while [ $i -lt 500 ]; do echo "noise line $i"; i=$((i+1)); done >&2; echo LAST >&2; exit 1`,
    ],
    async () => (await fetch(storage, id)).status === "killed",
  );
  assert.equal(code, 0);
  const message = (await fetch(storage, id)).lastError!.message;
  assert.ok(message.length < 4200, `message of ${message.length} chars is truncated`);
  assert.match(message, /^Command exited with code 1: …/);
  assert.ok(message.endsWith("noise line 499\nLAST"));
});

Deno.test("workCommand.run() fails an attempt whose command outlives --timeout and kills its process group", async () => {
  await using temp = await tempDatabase();
  const storage = storageOf(temp);
  const id = await storage.push({});
  const pidFile = `${temp.dir}/sleep.pid`;
  const { code, out } = await work(
    temp,
    [
      "--exec",
      `cat > /dev/null; sleep 30 & echo $! > '${pidFile}'; wait`,
      "--timeout",
      "300ms",
      "--backoff",
      "1h",
    ],
    async () => (await fetch(storage, id)).status === "failed",
  );
  assert.equal(code, 0);
  const task = await fetch(storage, id);
  assert.equal(task.attempts, 1);
  assert.equal(task.lastError?.name, "TaskTimeoutError");
  assert.equal(task.lastError?.message, new TaskTimeoutError(300).message);
  assert.match(out, /: 0 done, 1 failed, 0 killed /);
  const pid = Number(readFileSync(pidFile, "utf8"));
  await waitUntil(() => processGone(pid), `the command's sleep (pid ${pid}) to be killed`);
});

Deno.test("workCommand.run() with --max-attempts kills a task at that attempt, whether it fails or times out", async () => {
  await using temp = await tempDatabase();
  const storage = storageOf(temp);
  const failing = await storage.push({ kind: "fail" }); // pushed with the default 5 attempts
  const slow = await storage.push({ kind: "slow" });
  const marker = `${temp.dir}/ran`;
  const { code, out, err } = await work(
    temp,
    [
      "--exec",
      `if grep -q slow; then echo "$APALIS_ATTEMPT" >> '${marker}'; sleep 30; fi; exit 1`,
      "--max-attempts",
      "2",
      "--timeout",
      "300ms",
      "--backoff",
      "10ms",
    ],
    async () => (await statusesOf(storage, [failing, slow])).every((s) => s === "killed"),
  );
  assert.equal(code, 0);
  const failed = await fetch(storage, failing);
  assert.equal(failed.attempts, 2);
  assert.equal(failed.lastError?.name, "CommandError");
  assert.equal(failed.lastError?.message, "Command exited with code 1 (nothing on stderr)");
  // Attempt 1 times out and is retried; attempt 2 times out and is the last.
  const timedOut = await fetch(storage, slow);
  assert.equal(timedOut.attempts, 2);
  assert.equal(timedOut.lastError?.name, "TaskTimeoutError");
  assert.equal(timedOut.lastError?.message, new TaskTimeoutError(300).message);
  assert.match(out, /: 0 done, 2 failed, 2 killed /);
  // The log counts attempts against the cap, not the task's own limit of 5.
  for (const id of [failing, slow]) {
    assert.match(err, new RegExp(`task ${id} attempt 1/2 failed .*\\n`));
    assert.match(err, new RegExp(`task ${id} attempt 2/2 killed: `));
  }
  assert.deepEqual(readFileSync(marker, "utf8").trim().split("\n"), ["1", "2"]);
});

Deno.test("workCommand.run() with --max-attempts kills a task whose attempt at the cap is interrupted by the shutdown", async () => {
  await using temp = await tempDatabase();
  const storage = storageOf(temp);
  const id = await storage.push({}); // pushed with the default 5 attempts
  const { code, out } = await work(
    temp,
    ["--exec", "sleep 30", "--max-attempts", "1", "--shutdown-timeout", "50ms"],
    async () => (await storage.stats()).running === 1,
    { what: "the command to start" },
  );
  assert.equal(code, 0);
  const task = await fetch(storage, id);
  assert.equal(task.status, "killed");
  assert.equal(task.attempts, 1);
  assert.equal(task.lastError?.name, "ShutdownError");
  assert.match(out, /: 0 done, 0 failed, 1 killed /);
});

Deno.test("workCommand.run() runs up to --concurrency commands at once", async () => {
  await using temp = await tempDatabase();
  const storage = storageOf(temp);
  const ids = await Promise.all([1, 2, 3].map((n) => storage.push(n)));
  const go = `${temp.dir}/go`;
  const { code, out } = await work(
    temp,
    ["--exec", `while [ ! -f '${go}' ]; do sleep 0.02; done; cat`, "--concurrency", "3"],
    async () => {
      if ((await storage.stats()).running === 3) Deno.writeTextFileSync(go, "");
      return (await storage.stats()).done === 3;
    },
    { what: "three commands running at once, then done" },
  );
  assert.equal(code, 0);
  assert.deepEqual(
    await Promise.all(ids.map(async (id) => (await fetch(storage, id)).lastResult)),
    [
      1,
      2,
      3,
    ],
  );
  assert.match(out, /: 3 done,/);
});

Deno.test("workCommand.run() on interrupt lets the running command finish and releases the tasks it had not started", async () => {
  await using temp = await tempDatabase();
  const storage = storageOf(temp);
  const ids = await Promise.all([1, 2, 3, 4].map((n) => storage.push(n)));
  const go = `${temp.dir}/go`;
  const io = captureIo({ env: { APALIS_DB: temp.path, PATH } });
  const running = main(
    ["work", QUEUE, "--exec", `while [ ! -f '${go}' ]; do sleep 0.02; done; cat`],
    io,
  );
  await waitUntil(async () => (await storage.stats()).running === 1, "a command to start");
  io.interrupt();
  await waitUntil(async () => (await storage.stats()).queued === 0, "the buffer to be released");
  assert.ok(!existsSync(go));
  Deno.writeTextFileSync(go, "");
  assert.equal(await running, 0);
  const statuses = await statusesOf(storage, ids);
  assert.equal(statuses.filter((s) => s === "done").length, 1);
  assert.equal(statuses.filter((s) => s === "pending").length, 3);
  assert.match(io.out, /: 1 done, 0 failed, 0 killed /);
});

Deno.test("workCommand.run() --http POSTs the payload with the task headers; 2xx stores the body, 500 fails", async () => {
  await using temp = await tempDatabase();
  const storage = storageOf(temp);
  const received: { headers: Record<string, string | null>; body: unknown }[] = [];
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => {
      const body = await req.json();
      received.push({
        headers: {
          "content-type": req.headers.get("content-type"),
          id: req.headers.get("x-apalis-task-id"),
          attempt: req.headers.get("x-apalis-attempt"),
          queue: req.headers.get("x-apalis-queue"),
        },
        body,
      });
      if (body.kind === "json") return Response.json({ sent: true, to: body.to });
      if (body.kind === "text") return new Response("accepted\n");
      return new Response("database is down", { status: 500 });
    },
  );
  const url = `http://127.0.0.1:${server.addr.port}/hook`;
  const json = await storage.push({ kind: "json", to: "ada" });
  const text = await storage.push({ kind: "text" });
  const broken = await storage.push({ kind: "broken" }, { maxAttempts: 2 });
  const { code, out } = await work(
    temp,
    ["--http", url, "--backoff", "10ms"],
    async () => (await statusesOf(storage, [json, text, broken])).join() === "done,done,killed",
  );
  assert.equal(code, 0);
  assert.deepEqual((await fetch(storage, json)).lastResult, { sent: true, to: "ada" });
  assert.equal((await fetch(storage, text)).lastResult, "accepted");
  const failed = await fetch(storage, broken);
  assert.equal(failed.attempts, 2);
  assert.equal(failed.lastError?.name, "HttpError");
  assert.equal(
    failed.lastError?.message,
    `POST ${url} answered 500 Internal Server Error: database is down`,
  );
  const first = received.find((r) => r.headers.id === json);
  assert.deepEqual(first, {
    headers: { "content-type": "application/json", id: json, attempt: "1", queue: QUEUE },
    body: { kind: "json", to: "ada" },
  });
  assert.deepEqual(
    received.filter((r) => r.headers.id === broken).map((r) => r.headers.attempt),
    ["1", "2"],
  );
  assert.match(out, /: 2 done, 1 failed, 1 killed /);
});

Deno.test("workCommand.run() --http fails the attempt on a network error", async () => {
  await using temp = await tempDatabase();
  const storage = storageOf(temp);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(),
  );
  const url = `http://127.0.0.1:${server.addr.port}/`;
  await server.shutdown(); // nothing listens there any more
  const id = await storage.push({}, { maxAttempts: 1 });
  const { code } = await work(
    temp,
    ["--http", url],
    async () => (await fetch(storage, id)).status === "killed",
  );
  assert.equal(code, 0);
  const task = await fetch(storage, id);
  assert.equal(task.lastError?.name, "HttpError");
  assert.match(task.lastError!.message, new RegExp(`^POST ${url} failed: `));
});

Deno.test("workCommand.run() draws a live status line on a terminal and erases it at exit", async () => {
  await using temp = await tempDatabase();
  const storage = storageOf(temp);
  await storage.push(1);
  const { code, err, out } = await work(
    temp,
    ["--exec", "cat"],
    async () => (await storage.stats()).done === 1,
    { isTerminal: true, env: { NO_COLOR: "1" } },
  );
  assert.equal(code, 0);
  assert.ok(
    err.includes("\r\x1b[2Kjobs · 0 done · 0 failed · 0 killed · 0 in flight · 0.0 tasks/s"),
    JSON.stringify(err),
  );
  assert.ok(err.endsWith("\r\x1b[2K"), "the status line is erased at exit");
  assert.match(out, /: 1 done,/);
});

Deno.test("workCommand.run() prints the summary as JSON with --json", async () => {
  await using temp = await tempDatabase();
  const storage = storageOf(temp);
  await storage.push(1);
  const { code, out } = await work(
    temp,
    ["--exec", "cat", "--json", "--name", "json-worker"],
    async () => (await storage.stats()).done === 1,
  );
  assert.equal(code, 0);
  const summary = JSON.parse(out);
  assert.equal(typeof summary.elapsedMs, "number");
  delete summary.elapsedMs;
  assert.deepEqual(summary, { worker: "json-worker", queue: QUEUE, done: 1, failed: 0, killed: 0 });
});

Deno.test("workCommand.run() exits 1 when a live worker already holds --name", async () => {
  await using temp = await tempDatabase();
  const storage = storageOf(temp);
  await storage.push(1);
  const { code } = await work(
    temp,
    ["--exec", "cat", "--name", "taken"],
    async () => {
      const second = await run(temp.path, ["work", QUEUE, "--exec", "cat", "--name", "taken"]);
      assert.equal(second.code, 1);
      assert.equal(second.out, "");
      assert.match(second.err, /^apalis work: Cannot register worker 'taken': /);
      return true;
    },
    { what: "the second worker to be refused" },
  );
  assert.equal(code, 0);
});

Deno.test("workCommand.run() rejects bad usage with exit 2 before touching the database", async () => {
  await using temp = await tempDatabase();
  const cases: [string[], RegExp][] = [
    [["work", QUEUE], /give exactly one of --exec "CMD" or --http URL/],
    [["work", QUEUE, "--exec", "cat", "--http", "http://127.0.0.1:1/"], /exactly one of/],
    [["work", QUEUE, "--exec", " "], /'--exec' needs a command/],
    [["work", "--exec", "cat"], /missing QUEUE/],
    [["work", QUEUE, "other", "--exec", "cat"], /unexpected argument 'other'/],
    [
      ["work", QUEUE, "--exec", "cat", "--concurrency", "0"],
      /'--concurrency' must be a whole number >= 1: got '0'/,
    ],
    [
      ["work", QUEUE, "--exec", "cat", "--concurrency", "many"],
      /'--concurrency' must be a whole number/,
    ],
    [["work", QUEUE, "--exec", "cat", "--timeout", "soon"], /'--timeout' must be a duration/],
    [["work", QUEUE, "--exec", "cat", "--timeout", "0s"], /'--timeout' must be at least 1ms/],
    [
      ["work", QUEUE, "--exec", "cat", "--max-attempts", "0"],
      /'--max-attempts' must be a whole number >= 1/,
    ],
    [["work", QUEUE, "--exec", "cat", "--backoff=-1s"], /'--backoff' must be a duration/],
    [
      ["work", QUEUE, "--http", "ftp://example.com/"],
      /'--http' must be an http\(s\) URL: got 'ftp/,
    ],
    [["work", QUEUE, "--http", "not a url"], /'--http' must be an http\(s\) URL/],
    [["work", QUEUE, "--exec", "cat", "--verbose"], /Unknown option '--verbose'/],
  ];
  for (const [args, message] of cases) {
    const { code, out, err } = await run(temp.path, args);
    assert.equal(code, 2, `${args.join(" ")}: ${err}`);
    assert.equal(out, "");
    assert.match(err, /^apalis work: /);
    assert.match(err, message);
  }
  assert.deepEqual(await new SqliteStorage(temp.db).listWorkers(), []);
  const missing = await run(`${temp.dir}/missing.db`, ["work", QUEUE, "--exec", "cat"]);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /no such file/);
  assert.ok(!existsSync(`${temp.dir}/missing.db`));
});

Deno.test("workCommand.help documents --exec, --http and what --max-attempts means", async () => {
  const io = captureIo();
  assert.equal(await main(["work", "--help"], io), 0);
  for (
    const text of ["--exec", "--http", "APALIS_TASK_ID", "--max-attempts", "--timeout", "SIGKILL"]
  ) {
    assert.ok(io.out.includes(text), `help mentions ${text}`);
  }
});
