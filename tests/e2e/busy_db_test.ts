/**
 * A busy database: another process holds the write lock for 2 s while workers run.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type Database,
  openDatabase,
  SqliteStorage,
  Task,
  WorkerBuilder,
  type WorkerEvent,
} from "../../mod.ts";
import { tempDatabase, waitUntil } from "../_helpers.ts";
import { reap } from "./processes.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const HOLDER = new URL("./hold_lock_process.ts", import.meta.url).pathname;
const HOLD_MS = 2000;

function doneCount(db: Database): number {
  return db.get<{ n: number }>("SELECT count(*) AS n FROM apalis_tasks WHERE status = 'done'")!.n;
}

/** Reads a child's stdout line by line. */
function lines(child: Deno.ChildProcess): AsyncIterator<string> {
  return (async function* () {
    let buffer = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        yield buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
      }
    }
  })();
}

async function nextLine(reader: AsyncIterator<string>, what: string): Promise<string> {
  const { value, done } = await reader.next();
  if (done) throw new Error(`The lock holder exited before printing ${what}`);
  return value;
}

Deno.test("Worker waits out a write lock another process holds for 2 s, with the event loop serving timers and no error", async () => {
  await using tmp = await tempDatabase();
  const queue = new SqliteStorage<number>(tmp.db, "busy");
  const ids = await queue.pushAll(Array.from({ length: 400 }, (_, i) => Task.builder(i).build()));

  const rejections: unknown[] = [];
  const onRejection = (event: PromiseRejectionEvent) => rejections.push(event.reason);
  globalThis.addEventListener("unhandledrejection", onRejection);
  const events: { worker: string; event: WorkerEvent }[] = [];
  // The first 20 tasks run freely; the others wait until the lock is held, so that handlers are
  // in flight, and finish, while the workers cannot write.
  let openGate!: () => void;
  const gate = new Promise<void>((resolve) => openGate = resolve);
  // Two workers, each with its own connection, as two workers in one process would be.
  const dbs = [openDatabase(tmp.path), openDatabase(tmp.path)];
  const workers = dbs.map((db, i) =>
    new WorkerBuilder<number>(`busy-worker-${i}`)
      .backend(new SqliteStorage<number>(db, "busy"))
      .concurrency(4)
      .handleSignals(false)
      .onEvent((ctx, event) => events.push({ worker: ctx.name, event }))
      .build(async (n) => {
        if (n >= 20) await gate;
        await new Promise((resolve) => setTimeout(resolve, 5));
        // The lock holder's task carries an object: n * 2 would be NaN, which JSON cannot hold.
        return typeof n === "number" ? n * 2 : null;
      })
  );
  const runs = workers.map((worker) => worker.run());

  const ticks: number[] = [];
  const interval = setInterval(() => ticks.push(Date.now()), 50);
  const holder = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", HOLDER, tmp.path, "busy", String(HOLD_MS)],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    await waitUntil(() => doneCount(tmp.db) === 20, "20 tasks done before the hold");
    const out = lines(holder);
    const locked = await nextLine(out, "'locked'");
    const lockedAt = Date.now();
    assert.match(locked, /^locked [0-9A-Z]{26}$/);
    const holderTask = locked.split(" ")[1]!;
    openGate();
    assert.equal(workers[0]!.inFlight + workers[1]!.inFlight, 8, "8 handlers in flight");

    // A push during the hold waits for the lock, then succeeds.
    let pushedAt = 0;
    const pushed = queue.push(-1).then((id) => {
      pushedAt = Date.now();
      return id;
    });
    // Half-way through the hold nothing was recorded: the workers really are waiting.
    await new Promise((resolve) => setTimeout(resolve, HOLD_MS / 2));
    assert.equal(doneCount(tmp.db), 20, "no outcome can commit while the lock is held");
    assert.equal(pushedAt, 0, "the push waits for the lock");

    const committed = await nextLine(out, "'committed'");
    const committedAt = Number(committed.split(" ")[1]);
    assert.ok(Number.isFinite(committedAt), committed);
    assert.equal((await holder.status).code, 0);
    const pushedId = await pushed;
    assert.ok(pushedAt >= committedAt, "the push went through after the holder committed");

    const all = [...ids, holderTask, pushedId];
    const tasks = await queue.waitFor(all, { timeoutMs: 30_000 });
    clearInterval(interval);
    for (const task of tasks) {
      assert.equal(task.status, "done", `task ${task.id} is ${task.status}`);
      assert.equal(task.attempts, 1, `task ${task.id} ran once`);
    }
    assert.deepEqual(
      tasks.slice(0, ids.length).map((task) => task.lastResult),
      ids.map((_, i) => i * 2),
    );

    // The event loop kept serving a 50 ms timer all through the hold (liveness, not speed).
    const during = ticks.filter((t) => t >= lockedAt - 500 && t <= committedAt + 500);
    let maxGap = 0;
    for (let i = 1; i < during.length; i++) {
      maxGap = Math.max(maxGap, during[i]! - during[i - 1]!);
    }
    assert.ok(during.length >= 10, `the timer fired ${during.length} times during the hold`);
    assert.ok(maxGap < 500, `the timer went ${maxGap} ms without firing during the hold`);
    // deno-lint-ignore no-console
    console.log(
      `largest timer gap during the hold: ${Math.round(maxGap)} ms, ${during.length} ticks`,
    );
  } finally {
    openGate();
    clearInterval(interval);
    await Promise.all(workers.map((worker) => worker.stop()));
    await Promise.all(runs);
    for (const db of dbs) db.close();
    await reap([holder]);
    globalThis.removeEventListener("unhandledrejection", onRejection);
  }
  const errors = events.filter(({ event }) => event.type === "error");
  assert.deepEqual(errors, [], "no error reaches the workers' listeners");
  assert.deepEqual(rejections, [], "no unhandled rejection");
  assert.deepEqual(
    events.filter(({ event }) => event.type === "success").length,
    ids.length + 2,
    "one success per task",
  );
  assert.equal(
    tmp.db.get<{ n: number }>(
      "SELECT count(*) AS n FROM apalis_tasks WHERE status IN ('running', 'queued', 'pending')",
    )!.n,
    0,
  );
});
