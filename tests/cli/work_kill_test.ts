/**
 * `apalis kill` of a task that `apalis work` is running, from another process: `--exec` ends
 * the command's process group (the shell and a grandchild it started are gone), `--http` aborts
 * the request (the server sees its client go). On a SQLite file and on a `postgres://` URL.
 *
 * @module
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { SqliteStorage, type Storage } from "../../mod.ts";
import { PostgresStorage } from "../../postgres.ts";
import { type CapturedIo, captureIo, main } from "../../lib/cli/mod.ts";
import { tempDatabase, waitUntil } from "../_helpers.ts";
import { pgTest, tempPostgres } from "../_postgres.ts";
import { PATH, processGone, QUEUE } from "./_work.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** Runs `apalis kill ID --reason REASON` as a process of its own, on `location`. */
async function killInAnotherProcess(location: string, id: string, reason: string): Promise<void> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "cli.ts", "kill", id, "--reason", reason],
    cwd: ROOT,
    env: { APALIS_DB: location, NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const out = new TextDecoder().decode(stdout);
  assert.equal(code, 0, `apalis kill exited ${code}: ${new TextDecoder().decode(stderr)}`);
  assert.equal(out, `Task ${id} is killed\n`);
}

/** Starts `apalis work QUEUE ...args` in this process on `location`; `stop()` interrupts it. */
function startWork(location: string, args: string[]) {
  const io: CapturedIo = captureIo({ env: { APALIS_DB: location, PATH, NO_COLOR: "1" } });
  let exited = false;
  const exit = main(["work", QUEUE, "--name", "w1", ...args], io).finally(() => exited = true);
  return {
    io,
    alive() {
      if (exited) throw new Error(`apalis work exited early: ${io.err}`);
      return true;
    },
    async stop(): Promise<number> {
      io.interrupt();
      return await exit;
    },
  };
}

/** The killed task's record and the worker's report of it. */
async function assertKilled(
  storage: Storage<unknown>,
  id: string,
  reason: string,
  work: { io: CapturedIo },
): Promise<void> {
  const task = await storage.fetchById(id);
  assert.equal(task?.status, "killed");
  assert.equal(task?.attempts, 1);
  assert.equal(task?.lastResult, undefined);
  assert.deepEqual([task?.lastError?.name, task?.lastError?.message], ["KilledError", reason]);
  assert.match(
    work.io.err,
    new RegExp(`task ${id} attempt 1/\\d+ killed: KilledError: Task '${id}' was killed: ${reason}`),
  );
  assert.match(work.io.out, /: 0 done, 0 failed, 1 killed /);
}

/** `--exec`: a command that starts a grandchild and waits; killed from another process. */
async function execKilled(location: string, storage: Storage<unknown>, dir: string) {
  const id = await storage.push({ job: "long" });
  const shellPid = `${dir}/sh.pid`;
  const sleepPid = `${dir}/sleep.pid`;
  const work = startWork(location, [
    "--exec",
    `case "$(cat)" in *long*) echo $$ > '${shellPid}'; sleep 60 & echo $! > '${sleepPid}'; wait;; ` +
    `*) echo quick;; esac`,
  ]);
  let code: number;
  try {
    await waitUntil(
      () => work.alive() && existsSync(sleepPid) && readFileSync(sleepPid, "utf8").endsWith("\n"),
      "the command to start its grandchild",
    );
    const pids = [shellPid, sleepPid].map((file) => Number(readFileSync(file, "utf8")));
    assert.ok(pids.every((pid) => !processGone(pid)), "the command and its grandchild run");
    await killInAnotherProcess(location, id, "stop the export");
    await waitUntil(
      () => work.alive() && pids.every(processGone),
      `the command (pid ${pids[0]}) and its grandchild (pid ${pids[1]}) to be gone`,
    );
    // The worker goes on: its only slot runs the next task.
    const next = await storage.push({ job: "quick" });
    await waitUntil(
      async () => work.alive() && (await storage.fetchById(next))?.status === "done",
      "the next task to run",
    );
  } finally {
    code = await work.stop();
  }
  assert.equal(code, 0, work.io.err);
  const task = await storage.fetchById(id);
  assert.equal(task?.status, "killed");
  assert.deepEqual([task?.lastError?.name, task?.lastError?.message], [
    "KilledError",
    "stop the export",
  ]);
  assert.match(work.io.out, /: 1 done, 0 failed, 1 killed /);
}

/** `--http`: a request the server never answers; killed from another process. */
async function httpKilled(location: string, storage: Storage<unknown>) {
  const id = await storage.push({ job: "long" });
  let requests = 0;
  let clientGone = false;
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => {
      requests++;
      // Never answers: only the client going away ends the request.
      return new Promise<Response>((resolve) => {
        req.signal.addEventListener("abort", () => {
          clientGone = true;
          resolve(new Response("too late"));
        });
      });
    },
  );
  const work = startWork(location, ["--http", `http://127.0.0.1:${server.addr.port}/hook`]);
  let code: number;
  try {
    await waitUntil(() => work.alive() && requests === 1, "the request to reach the server");
    await killInAnotherProcess(location, id, "customer cancelled");
    await waitUntil(() => work.alive() && clientGone, "the worker to abort the request");
  } finally {
    code = await work.stop();
  }
  assert.equal(code, 0, work.io.err);
  assert.equal(requests, 1);
  await assertKilled(storage, id, "customer cancelled", work);
}

Deno.test("apalis kill from another process ends the process group of a running `work --exec` command (SQLite)", async () => {
  await using temp = await tempDatabase();
  await execKilled(temp.path, new SqliteStorage(temp.db, QUEUE), temp.dir);
});

Deno.test("apalis kill from another process aborts the request of a running `work --http` task (SQLite)", async () => {
  await using temp = await tempDatabase();
  await httpKilled(temp.path, new SqliteStorage(temp.db, QUEUE));
});

pgTest(
  "apalis kill from another process ends the process group of a running `work --exec` command (PostgreSQL)",
  async () => {
    await using db = await tempPostgres();
    const dir = await Deno.makeTempDir({ prefix: "apalis_kill_" });
    try {
      await execKilled(db.url, new PostgresStorage(db.pg, QUEUE), dir);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

pgTest(
  "apalis kill from another process aborts the request of a running `work --http` task (PostgreSQL)",
  async () => {
    await using db = await tempPostgres();
    await httpKilled(db.url, new PostgresStorage(db.pg, QUEUE));
  },
);

Deno.test("killCommand.help says how a kill reaches a running task", async () => {
  const io = captureIo({ env: {} });
  assert.equal(await main(["kill", "--help"], io), 0);
  for (const text of ["ctx.signal", "KilledError", "500 ms", "process group", "--http"]) {
    assert.ok(io.out.includes(text), `help mentions ${text}`);
  }
});
