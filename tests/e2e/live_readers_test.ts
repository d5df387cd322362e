/**
 * The CLI's read-only commands and the board on a database that a worker in another process is
 * writing: they read its commits as they happen, and leave no file behind once everyone is gone.
 *
 * @module
 */
import assert from "node:assert/strict";
import { captureIo, main } from "../../lib/cli/mod.ts";
import { runCommand } from "../_command.ts";
import { waitUntil } from "../_wait.ts";
import { exitOf, reap } from "./processes.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const CLI = new URL("../../cli.ts", import.meta.url).pathname;

async function cli(path: string, ...args: string[]): Promise<{ code: number; out: string }> {
  const io = captureIo({ env: {} });
  const code = await main(["--db", path, ...args], io);
  assert.equal(io.err, "", `${args.join(" ")} printed to stderr`);
  return { code, out: io.out };
}

async function json<T>(path: string, ...args: string[]): Promise<T> {
  const { code, out } = await cli(path, "--json", ...args);
  assert.equal(code, 0, args.join(" "));
  return JSON.parse(out) as T;
}

const HAS_BUN = await (async () => {
  try {
    return (await new Deno.Command("bun", { args: ["--version"], stdout: "null" }).output())
      .success;
  } catch {
    return false;
  }
})();

Deno.test("ls, show, stats, queues, workers and the board read a live worker's commits from another process, and no -wal or -shm is left after", async () => {
  const dir = await Deno.makeTempDir({ prefix: "apalis_live_" });
  const path = `${dir}/queue.db`;
  const children: Deno.ChildProcess[] = [];
  const board = captureIo({ env: {} });
  let boardExit: Promise<number> | undefined;
  try {
    assert.equal((await cli(path, "init")).code, 0);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["queue.db"]);

    // The board starts read-only, before the worker and before any task exists.
    boardExit = main(["--db", path, "board", "--port", "0", "--refresh", "0"], board);
    await waitUntil(() => /http:\/\/127\.0\.0\.1:\d+\//.test(board.out), "the board's address");
    const url = board.out.match(/http:\/\/127\.0\.0\.1:\d+\//)![0];

    const worker = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, "--db", path, "work", "live", "--exec", "cat", "--name", "w1"],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    children.push(worker);
    await waitUntil(
      async () =>
        (await json<{ name: string; alive: boolean }[]>(path, "workers"))
          .some((w) => w.name === "w1" && w.alive),
      "the worker's registration, read by 'workers'",
      30_000,
    );

    const ids: string[] = [];
    for (let n = 1; n <= 3; n++) {
      const pushed = await cli(path, "push", "live", JSON.stringify({ n }));
      assert.equal(pushed.code, 0);
      const id = pushed.out.trim();
      ids.push(id);
      // The worker's process records the outcome; each read-only command must see it.
      await waitUntil(
        async () => (await json<{ status: string }>(path, "show", id)).status === "done",
        `task ${n} done, read by 'show'`,
        30_000,
      );
      const shown = await json<{ lastResult: unknown }>(path, "show", id);
      assert.deepEqual(shown.lastResult, { n }, "cat echoed the payload as the result");
      const stats = await json<{ queues: Record<string, { done: number }> }>(path, "stats");
      assert.equal(stats.queues.live?.done, n, "stats");
      const listed = await json<{ id: string; status: string }[]>(path, "ls", "live");
      assert.deepEqual(listed.map((t) => t.id), [...ids].reverse(), "ls, newest first");
      const queues = await json<{ name: string; counts: { done: number } }[]>(path, "queues");
      assert.equal(queues.find((q) => q.name === "live")?.counts.done, n, "queues");
      const overview = await (await fetch(`${url}api/overview`)).json();
      assert.equal(overview.queues[0].counts.done, n, "the board's overview");
      const task = await (await fetch(`${url}api/tasks/${id}`)).json();
      assert.equal(task.status, "done", "the board's task");
    }
    if (HAS_BUN) {
      // The same through bun:sqlite, in a process of its own.
      const shown = await runCommand("bun", {
        args: ["run", CLI, "--db", path, "--json", "show", ids[2]!],
        cwd: ROOT,
        env: { APALIS_SQLITE_DRIVER: "bun:sqlite" },
        stdin: "null",
      });
      assert.equal(shown.code, 0, shown.stderr);
      assert.equal(JSON.parse(shown.stdout).status, "done", "show under bun:sqlite");
    }

    // A button of the board writes: the worker runs the task again.
    const retried = await fetch(`${url}api/tasks/${ids[0]}/retry`, { method: "POST" });
    assert.equal(retried.status, 200, await retried.text());
    await waitUntil(
      async () =>
        (await json<{ attempts: number; status: string }>(path, "show", ids[0]!))
          .status === "done",
      "the retried task done again",
      30_000,
    );
    const stats = await json<{ queues: Record<string, { done: number }> }>(path, "stats");
    assert.equal(stats.queues.live?.done, 3);

    worker.kill("SIGTERM");
    const exit = await exitOf(worker, "the worker", 30_000);
    assert.equal(exit.code, 0, exit.stderr);
  } finally {
    board.interrupt();
    if (boardExit) assert.equal(await boardExit, 0, board.err);
    await reap(children);
  }
  try {
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name),
      ["queue.db"],
      "the last connection to close removed the -wal and -shm files",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
