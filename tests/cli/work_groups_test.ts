/**
 * `apalis work --exec` runs each command in a process group of its own: a timeout, a graceful
 * shutdown past `--shutdown-timeout` (SIGTERM or SIGINT) and a second signal end the whole
 * group, grandchildren included; a `kill -9` of the worker leaves the group running, and the
 * task runs again once rescued. Each test runs the worker as a real process (`deno run cli.ts`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { TaskTimeoutError } from "../../mod.ts";
import { captureIo, main } from "../../lib/cli/mod.ts";
import { type TempDatabase, tempDatabase, waitUntil } from "../_helpers.ts";
import { fetch, processGone, QUEUE, storageOf } from "./_work.ts";

const CLI = fileURLToPath(new URL("../../cli.ts", import.meta.url));
const WAIT_MS = 30_000;

/**
 * The command: records its shell's pid, starts a background `sleep` in a subshell that exits
 * at once (so the sleep is a grandchild nobody waits for) and records its pid, then sleeps.
 * On a later attempt (a rescue) it only says so and exits 0.
 */
function command(dir: string): string {
  return `cat > /dev/null
if [ "$APALIS_ATTEMPT" != 1 ] && [ -f '${dir}/again' ]; then echo "attempt $APALIS_ATTEMPT"; exit 0; fi
echo $$ > '${dir}/shell.pid'
(sleep 60 & echo $! > '${dir}/grandchild.pid')
sleep 60`;
}

/** The pids of the running command's shell and background grandchild, once both wrote them. */
async function commandPids(dir: string): Promise<{ shell: number; grandchild: number }> {
  const read = (name: string) => {
    try {
      return Number(readFileSync(`${dir}/${name}.pid`, "utf8")) || undefined;
    } catch {
      return undefined;
    }
  };
  let pids: { shell: number; grandchild: number } | undefined;
  await waitUntil(
    () => {
      const shell = read("shell");
      const grandchild = read("grandchild");
      if (shell && grandchild) pids = { shell, grandchild };
      return pids !== undefined;
    },
    "the command and its grandchild to start",
    WAIT_MS,
  );
  return pids!;
}

/** Starts `apalis work QUEUE --exec CMD ...args` as a process of its own. */
function spawnWorker(temp: TempDatabase, args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "work", QUEUE, "--exec", command(temp.dir), ...args],
    env: { APALIS_DB: temp.path, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** The worker's exit code and output; fails if it lingers. */
async function exitOf(child: Deno.ChildProcess) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const lingered = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the worker was still running ${WAIT_MS} ms after the signal`));
    }, WAIT_MS);
  });
  try {
    const { code, stdout, stderr } = await Promise.race([child.output(), lingered]);
    const decoder = new TextDecoder();
    return { code, out: decoder.decode(stdout), err: decoder.decode(stderr) };
  } finally {
    clearTimeout(timer);
  }
}

async function waitGone(pids: { shell: number; grandchild: number }) {
  await waitUntil(
    () => processGone(pids.shell) && processGone(pids.grandchild),
    `the command's shell (${pids.shell}) and grandchild (${pids.grandchild}) to be gone`,
    WAIT_MS,
  );
}

/** Ends a group the test left running (the kill -9 case). */
function killGroup(pid: number) {
  try {
    Deno.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
}

Deno.test("apalis work --exec: a timeout ends the command's whole process group, grandchildren included", async () => {
  await using temp = await tempDatabase();
  const storage = storageOf(temp);
  const id = await storage.push({}, { maxAttempts: 1 });
  const worker = spawnWorker(temp, ["--timeout", "500ms"]);
  const pids = await commandPids(temp.dir);
  await waitGone(pids);
  await waitUntil(async () => (await fetch(storage, id)).status === "killed", "the task killed");
  assert.equal((await fetch(storage, id)).lastError?.message, new TaskTimeoutError(500).message);
  worker.kill("SIGTERM");
  assert.equal((await exitOf(worker)).code, 0);
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`apalis work --exec: ${signal} past --shutdown-timeout ends the command's whole process group`, async () => {
    await using temp = await tempDatabase();
    const storage = storageOf(temp);
    const id = await storage.push({});
    const worker = spawnWorker(temp, ["--shutdown-timeout", "300ms", "--backoff", "1h"]);
    const pids = await commandPids(temp.dir);
    worker.kill(signal);
    const { code, out, err } = await exitOf(worker);
    assert.equal(code, 0, err);
    assert.match(out, /: 0 done, 1 failed, 0 killed /);
    await waitGone(pids);
    const task = await fetch(storage, id);
    assert.equal(task.status, "failed");
    assert.equal(task.lastError?.name, "ShutdownError");
  });
}

Deno.test("apalis work --exec: a second signal exits 130 at once and ends the command's whole process group", async () => {
  await using temp = await tempDatabase();
  const storage = storageOf(temp);
  const id = await storage.push({});
  const worker = spawnWorker(temp, ["--shutdown-timeout", "1h"]);
  const pids = await commandPids(temp.dir);
  // The first SIGTERM starts a graceful shutdown that would wait an hour; the next one (sent
  // again until it exits, in case two signals close together count as one) ends it.
  let exited = false;
  void worker.status.then(() => exited = true);
  while (!exited) {
    try {
      worker.kill("SIGTERM");
    } catch {
      // it just exited
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const { code } = await exitOf(worker);
  assert.equal(code, 130);
  await waitGone(pids);
  // The worker died without recording the attempt: the task stays running until rescued.
  assert.equal((await fetch(storage, id)).status, "running");
});

Deno.test("apalis work --exec: after kill -9 of the worker its command's group lives on, and the task runs again once rescued", async () => {
  await using temp = await tempDatabase();
  const storage = storageOf(temp);
  const id = await storage.push({});
  const first = spawnWorker(temp, ["--name", "w"]);
  const pids = await commandPids(temp.dir);
  try {
    first.kill("SIGKILL");
    assert.equal((await first.output()).signal, "SIGKILL");
    // Nothing ends the group: the command and its grandchild keep running.
    assert.ok(!processGone(pids.shell), "the command's shell still runs");
    assert.ok(!processGone(pids.grandchild), "the grandchild still runs");
    assert.equal((await fetch(storage, id)).status, "running");
    // The worker restarted under its name sees its old process gone and rescues the task.
    Deno.writeTextFileSync(`${temp.dir}/again`, "");
    const second = spawnWorker(temp, ["--name", "w"]);
    await waitUntil(
      async () => (await fetch(storage, id)).status === "done",
      "the rescued task to run again",
      WAIT_MS,
    );
    second.kill("SIGTERM");
    assert.equal((await exitOf(second)).code, 0);
    const task = await fetch(storage, id);
    assert.equal(task.lastResult, `attempt ${task.attempts}`);
    assert.ok(task.attempts >= 2, `${task.attempts} attempts`);
    assert.ok(!processGone(pids.grandchild), "the first command's group was left alone");
  } finally {
    killGroup(pids.shell);
  }
});

Deno.test("workCommand.help says what ends a command's process group, and what a kill -9 leaves", async () => {
  const io = captureIo();
  assert.equal(await main(["work", "--help"], io), 0);
  for (const text of ["process group of its own", "kill -9", "kill -- -PGID", "same --name"]) {
    assert.ok(io.out.includes(text), `help mentions ${text}`);
  }
});
