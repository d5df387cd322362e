/**
 * The long-running commands on a `postgres://` URL: `work --exec` and `work --http` (summary,
 * status line, failed attempts logged, worker registered as HOST-PID), `stats --watch`, and
 * `board` (its pages name the URL without the password; its buttons write).
 *
 * @module
 */
import assert from "node:assert/strict";
import { PostgresStorage } from "../../postgres.ts";
import { HOST_NAME, PROCESS_ID } from "../../lib/backend/process.ts";
import { type CapturedIo, captureIo, main } from "../../lib/cli/mod.ts";
import { waitUntil } from "../_helpers.ts";
import { pgTest, tempPostgres } from "../_postgres.ts";
import { cli, withPassword } from "./_postgres_cli.ts";

/** Starts `apalis ...args` in-process with `$APALIS_DB` = `url`; interrupt it with `io`. */
function start(url: string, args: string[], options: { isTerminal?: boolean } = {}) {
  const io: CapturedIo = captureIo({
    env: { APALIS_DB: url, PATH: Deno.env.get("PATH"), NO_COLOR: "1" },
    isTerminal: options.isTerminal ?? false,
  });
  let exited = false;
  const exit = main(args, io).finally(() => exited = true);
  return { io, exit, exited: () => exited };
}

pgTest(
  "apalis work --exec on a URL drains the queue, logs failed attempts, kills after the last, and prints its summary",
  async () => {
    await using db = await tempPostgres();
    const storage = new PostgresStorage<{ n: number; fail?: boolean }>(db.pg, "thumbs");
    const ids = [];
    for (let n = 1; n <= 5; n++) ids.push(await storage.push({ n }));
    const failing = await storage.push({ n: 0, fail: true }, { maxAttempts: 2 });
    const script =
      `payload=$(cat); case "$payload" in *fail*) echo "no $APALIS_TASK_ID" >&2; exit 3;; esac; ` +
      `echo "{\\"n\\": $(echo "$payload" | sed 's/[^0-9]//g'), \\"attempt\\": $APALIS_ATTEMPT}"`;
    const worker = start(db.url, [
      "work",
      "thumbs",
      "--exec",
      script,
      "-c",
      "2",
      "--backoff",
      "10ms",
    ], {
      isTerminal: true,
    });
    try {
      await waitUntil(
        async () => {
          if (worker.exited()) throw new Error(`apalis work exited early: ${worker.io.err}`);
          const stats = await storage.stats();
          return stats.done === 5 && stats.killed === 1;
        },
        "the worker drained the queue",
        30_000,
      );
      const workers = JSON.parse((await cli(db.url, ["workers", "--json"])).out);
      assert.deepEqual(
        workers.map((
          w: { name: string; host: string; pid: number; alive: boolean },
        ) => [w.name, w.host, w.pid, w.alive]),
        [[`${HOST_NAME}-${PROCESS_ID}`, HOST_NAME, PROCESS_ID, true]],
      );
      await waitUntil(
        () => worker.io.err.includes("thumbs · 5 done · 1 failed · 1 killed · 0 in flight"),
        "the status line counted the outcomes",
      );
    } finally {
      worker.io.interrupt();
    }
    assert.equal(await worker.exit, 0, worker.io.err);
    assert.match(
      worker.io.out,
      new RegExp(
        `^Worker '${HOST_NAME}-${PROCESS_ID}' stopped after .+: 5 done, 1 failed, 1 killed \\(\\d+\\.\\d tasks/s\\)\\n$`,
      ),
    );
    const err = worker.io.err;
    assert.match(err, /Worker '.+' on queue 'thumbs' \(--exec, concurrency 2\); Ctrl-C to stop\n/);
    assert.match(
      err,
      new RegExp(
        `task ${failing} attempt 1/2 failed \\(retry in \\d+ms\\): CommandError: .*no ${failing}`,
      ),
    );
    assert.match(err, new RegExp(`task ${failing} attempt 2/2 killed: CommandError: `));
    assert.ok(err.endsWith("\r\x1b[2K"), "the status line is erased at exit");
    assert.deepEqual((await storage.fetchById(ids[2]!))?.lastResult, { n: 3, attempt: 1 });
    const after = JSON.parse((await cli(db.url, ["workers", "--json"])).out);
    assert.equal(after[0].alive, false, "stopped workers are not alive");
  },
);

pgTest(
  "apalis work --http on a URL posts each task and stores the answer; --json prints the summary",
  async () => {
    await using db = await tempPostgres();
    const storage = new PostgresStorage<string>(db.pg, "hooks");
    const id = await storage.push("ping");
    await using server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      async (req) =>
        Response.json({
          got: await req.json(),
          task: req.headers.get("x-apalis-task-id"),
        }),
    );
    const worker = start(db.url, [
      "work",
      "hooks",
      "--http",
      `http://127.0.0.1:${server.addr.port}/hook`,
      "--name",
      "hook-worker",
      "--json",
    ]);
    try {
      await waitUntil(async () => (await storage.stats()).done === 1, "the hook was called");
    } finally {
      worker.io.interrupt();
    }
    assert.equal(await worker.exit, 0, worker.io.err);
    const summary = JSON.parse(worker.io.out);
    delete summary.elapsedMs;
    assert.deepEqual(summary, {
      worker: "hook-worker",
      queue: "hooks",
      done: 1,
      failed: 0,
      killed: 0,
    });
    assert.deepEqual((await storage.fetchById(id))?.lastResult, { got: "ping", task: id });
  },
);

pgTest(
  "apalis stats --watch on a URL prints the counts at each interval until interrupted",
  async () => {
    await using db = await tempPostgres();
    const storage = new PostgresStorage(db.pg, "email");
    await storage.push(1);
    const watch = start(db.url, ["stats", "--watch", "--interval", "50ms", "--json"]);
    try {
      await waitUntil(() => watch.io.out.split("\n").length > 2, "two refreshes");
      await storage.push(2);
      await waitUntil(() => watch.io.out.includes('"total":2'), "a refresh saw the new task");
    } finally {
      watch.io.interrupt();
    }
    assert.equal(await watch.exit, 0, watch.io.err);
    const lines = watch.io.out.trim().split("\n").map((line) => JSON.parse(line));
    assert.equal(lines[0].queues.email.pending, 1);
    assert.equal(lines.at(-1).queues.email.pending, 2);
  },
);

pgTest(
  "apalis board on a URL serves pages and the API, shows the URL without its password, and its buttons write",
  async () => {
    await using db = await tempPostgres();
    const storage = new PostgresStorage(db.pg, "email");
    const id = await storage.push({ to: "a@example.com" });
    const url = withPassword(db.url, "board-secret");
    const location = url.replace(":board-secret@", ":***@");
    const board = start(url, ["board", "--port", "0"]);
    try {
      await waitUntil(() => {
        if (board.exited()) throw new Error(`apalis board exited early: ${board.io.err}`);
        return /http:\/\/127\.0\.0\.1:\d+\//.test(board.io.out);
      }, "the board printed its address");
      assert.ok(board.io.out.endsWith(` for ${location} — Ctrl-C to stop\n`), board.io.out);
      const address = board.io.out.match(/http:\/\/127\.0\.0\.1:\d+\//)![0];
      const overview = await (await fetch(`${address}api/overview`)).json();
      assert.deepEqual(overview.queues.map((q: { name: string }) => q.name), ["email"]);
      assert.equal(overview.queues[0].counts.pending, 1);
      for (const page of ["", "queues/email", `tasks/${id}`, "workers", "runs"]) {
        const response = await fetch(`${address}${page}`);
        assert.equal(response.status, 200, page);
        const html = await response.text();
        assert.ok(html.includes(location), `${page} names the database`);
        assert.ok(!html.includes("board-secret"), `${page} does not show the password`);
      }
      const killed = await fetch(`${address}api/tasks/${id}/kill`, { method: "POST" });
      assert.equal(killed.status, 200, await killed.text());
      assert.equal((await storage.fetchById(id))?.status, "killed");
    } finally {
      board.io.interrupt();
    }
    assert.equal(await board.exit, 0);
    assert.equal(board.io.err, "");
    assert.ok(!board.io.out.includes("board-secret"));
  },
);
