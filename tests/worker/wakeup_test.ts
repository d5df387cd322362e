import assert from "node:assert/strict";
import {
  BackoffStrategy,
  Config,
  IntervalStrategy,
  openDatabase,
  type PollStrategy,
  type PollTicker,
  SqliteStorage,
  Task,
  type Worker,
  WorkerBuilder,
} from "../../mod.ts";
import { tempDatabase, waitUntil } from "../_helpers.ts";

const MOD = new URL("../../mod.ts", import.meta.url).href;
const ROOT = new URL("../../", import.meta.url).pathname;

/** Polls once a minute: within a test, only a wake-up (push, commit, due timer) explains a run. */
const LAZY = new IntervalStrategy(60_000);

interface Stamped {
  pushedAt: number;
}

/** A worker on `storage` that records when (Date.now()) each task started, then stops. */
function recordingWorker(storage: SqliteStorage<Stamped>, name: string) {
  const started: { at: number; args: Stamped; taskId: string }[] = [];
  let idle!: () => void;
  const becameIdle = new Promise<void>((resolve) => idle = resolve);
  const worker = new WorkerBuilder(name)
    .backend(storage)
    .handleSignals(false)
    .onEvent((_ctx, event) => {
      if (event.type === "idle") idle();
    })
    .build((args, ctx) => {
      started.push({ at: Date.now(), args, taskId: ctx.taskId });
    });
  return { worker, started, becameIdle };
}

/** Runs `body` with `worker` running (and idle first); always stops it. */
async function whileRunning(
  worker: Worker<Stamped>,
  becameIdle: Promise<void>,
  body: () => Promise<void>,
): Promise<void> {
  const running = worker.run();
  try {
    await Promise.race([becameIdle, running]);
    await body();
  } finally {
    await worker.stop();
    await running;
  }
}

// --- (a) scheduled tasks run at their time, not at the next poll ------------------------------

Deno.test("Worker.run() starts a task scheduled 300 ms ahead at its run_at when the poll interval is a minute", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<Stamped>(tmp.db, new Config("sched").withPollInterval(LAZY));
  const { worker, started, becameIdle } = recordingWorker(storage, "sched-worker");
  await whileRunning(worker, becameIdle, async () => {
    // A later task first: the timer must move to the earlier one pushed after it.
    await storage.push({ pushedAt: Date.now() }, { runAfter: 60_000 });
    const id = await storage.push({ pushedAt: Date.now() }, { runAfter: 300 });
    await waitUntil(() => started.length > 0, "the scheduled task to start", 5000);
    const record = (await storage.fetchById(id))!;
    assert.equal(started[0]!.taskId, id);
    const late = started[0]!.at - record.runAt;
    assert.ok(late >= 0, `started ${-late} ms before its run_at`);
    assert.ok(late <= 250, `started ${late} ms after its run_at (the poll is a minute)`);
  });
  assert.equal(started.length, 1, "the task due in a minute did not run");
});

Deno.test("Worker.run() starts a task scheduled before the worker started at its run_at when the poll interval is a minute", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<Stamped>(tmp.db, new Config("sched").withPollInterval(LAZY));
  const id = await storage.push({ pushedAt: Date.now() }, { runAfter: 300 });
  const { worker, started, becameIdle } = recordingWorker(storage, "sched-worker");
  await whileRunning(worker, becameIdle, async () => {
    await waitUntil(() => started.length > 0, "the scheduled task to start", 5000);
    const record = (await storage.fetchById(id))!;
    const late = started[0]!.at - record.runAt;
    assert.ok(late >= 0 && late <= 250, `started ${late} ms after its run_at`);
  });
});

Deno.test("Worker.run() starts a task scheduled by another connection at its run_at when the poll interval is a minute", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<Stamped>(tmp.db, new Config("sched").withPollInterval(LAZY));
  const { worker, started, becameIdle } = recordingWorker(storage, "sched-worker");
  const other = openDatabase(tmp.path);
  try {
    await whileRunning(worker, becameIdle, async () => {
      const id = await new SqliteStorage<Stamped>(other, "sched").push(
        { pushedAt: Date.now() },
        { runAfter: 300 },
      );
      await waitUntil(() => started.length > 0, "the scheduled task to start", 5000);
      const record = (await storage.fetchById(id))!;
      const late = started[0]!.at - record.runAt;
      assert.ok(late >= 0 && late <= 250, `started ${late} ms after its run_at`);
    });
  } finally {
    other.close();
  }
});

// --- (b) backoff resets when work is found ----------------------------------------------------

/** Wraps a BackoffStrategy; records the foundWork flag of every wait and the ms it asked. */
class RecordingBackoff implements PollStrategy {
  waits: { found: boolean; ms: number }[] = [];
  #inner: BackoffStrategy;

  constructor(inner: BackoffStrategy) {
    this.#inner = inner;
  }

  ticker(): PollTicker {
    const inner = this.#inner.ticker((ms, signal) => {
      this.waits.at(-1)!.ms = ms;
      return abortableSleep(ms, signal);
    });
    return {
      wait: (found, signal) => {
        this.waits.push({ found, ms: Number.NaN });
        return inner.wait(found, signal);
      },
    };
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

Deno.test("Worker.run() resets its BackoffStrategy to initialMs after a poll found work", async () => {
  await using tmp = await tempDatabase();
  const strategy = new RecordingBackoff(
    new BackoffStrategy({ initialMs: 20, multiplier: 2, maxMs: 160, jitter: 0 }),
  );
  const storage = new SqliteStorage<Stamped>(
    tmp.db,
    new Config("backoff").withPollInterval(strategy),
  );
  const { worker, started, becameIdle } = recordingWorker(storage, "backoff-worker");
  const { waits } = strategy;
  await whileRunning(worker, becameIdle, async () => {
    // Idle: the waits grow to the cap.
    await waitUntil(
      () => waits.filter((w) => w.ms === 160).length >= 2,
      "the idle backoff to reach maxMs",
      5000,
    );
    const grown = waits.map((w) => w.ms);
    assert.deepEqual(grown.slice(0, 4), [20, 40, 80, 160], `idle waits: ${grown}`);
    assert.ok(waits.slice(1).every((w) => !w.found), "an empty poll is reported as no work");

    const mark = waits.length;
    const id = await storage.push({ pushedAt: Date.now() });
    await storage.waitFor([id], { timeoutMs: 5000 });
    assert.equal(started.length, 1);
    // A few more waits after the work: enough to see the reset and the new growth.
    await waitUntil(() => waits.length >= mark + 4, "the waits after the work", 5000);
    const after = waits.slice(mark);
    const shown = JSON.stringify(after);
    const reset = after.findIndex((w) => w.found);
    assert.ok(reset >= 0, `no wait after the claim was told foundWork=true: ${shown}`);
    assert.equal(after[reset]!.ms, 20, `the wait after the work restarts at initialMs: ${shown}`);
    assert.deepEqual(
      after.slice(reset + 1, reset + 3).map((w) => w.ms),
      [40, 80],
      `and grows again from there: ${shown}`,
    );
  });
});

// --- (c) a push by another process wakes an idle worker ----------------------------------------

/** Pushes one `{ pushedAt: Date.now() }` task to `queue` of the file at `path` from a child. */
async function pushFromChildProcess(path: string, queue: string): Promise<void> {
  const code = `
    import { openDatabase, SqliteStorage } from ${JSON.stringify(MOD)};
    const db = openDatabase(${JSON.stringify(path)});
    try {
      await new SqliteStorage(db, ${JSON.stringify(queue)}).push({ pushedAt: Date.now() });
    } finally {
      db.close();
    }
  `;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(
    output.code,
    0,
    `the pushing child exited with ${output.code}: ${new TextDecoder().decode(output.stderr)}`,
  );
}

Deno.test("Worker.run() is woken within 500 ms by a push from a child process when the poll interval is a minute", async (t) => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<Stamped>(tmp.db, new Config("ipc").withPollInterval(LAZY));
  const { worker, started, becameIdle } = recordingWorker(storage, "ipc-worker");
  let latency = Number.NaN;
  await whileRunning(worker, becameIdle, async () => {
    await pushFromChildProcess(tmp.path, "ipc");
    await waitUntil(() => started.length > 0, "the child's task to start", 5000);
    latency = started[0]!.at - started[0]!.args.pushedAt;
  });
  await t.step(`push → start took ${latency} ms`, () => {
    assert.ok(latency >= 0 && latency < 500, `push → start took ${latency} ms`);
  });
});

Deno.test("Worker.run() that drained a backlog (and stopped listening while busy) is woken within 500 ms by a child process's push", async (t) => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<Stamped>(tmp.db, new Config("busy-ipc").withPollInterval(LAZY));
  const BACKLOG = 3000;
  await storage.pushAll(Array.from({ length: BACKLOG }, () => new Task({ pushedAt: 0 })));
  const { worker, started, becameIdle } = recordingWorker(storage, "busy-ipc-worker");
  let latency = Number.NaN;
  await whileRunning(worker, becameIdle, async () => {
    assert.equal(started.length, BACKLOG, "idle only after the backlog");
    await pushFromChildProcess(tmp.path, "busy-ipc");
    await waitUntil(() => started.length > BACKLOG, "the child's task to start", 5000);
    latency = started[BACKLOG]!.at - started[BACKLOG]!.args.pushedAt;
  });
  await t.step(`push → start took ${latency} ms`, () => {
    assert.ok(latency >= 0 && latency < 500, `push → start took ${latency} ms`);
  });
});

// --- (d) pushes in the same process wake at once ----------------------------------------------

Deno.test("Worker.run() is woken at once by a push through another SqliteStorage object on the same db", async (t) => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<Stamped>(tmp.db, new Config("local").withPollInterval(LAZY));
  const { worker, started, becameIdle } = recordingWorker(storage, "local-worker");
  let latency = Number.NaN;
  await whileRunning(worker, becameIdle, async () => {
    const another = new SqliteStorage<Stamped>(tmp.db, "local");
    assert.notEqual(another, storage);
    await another.push({ pushedAt: Date.now() });
    await waitUntil(() => started.length > 0, "the task to start", 5000);
    latency = started[0]!.at - started[0]!.args.pushedAt;
  });
  await t.step(`push → start took ${latency} ms`, () => {
    assert.ok(latency >= 0 && latency < 100, `push → start took ${latency} ms`);
  });
});

Deno.test("Worker.run() is woken within 500 ms by a push through another connection in the same process", async (t) => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<Stamped>(tmp.db, new Config("conn").withPollInterval(LAZY));
  const { worker, started, becameIdle } = recordingWorker(storage, "conn-worker");
  const other = openDatabase(tmp.path);
  let latency = Number.NaN;
  try {
    await whileRunning(worker, becameIdle, async () => {
      await new SqliteStorage<Stamped>(other, "conn").push({ pushedAt: Date.now() });
      await waitUntil(() => started.length > 0, "the task to start", 5000);
      latency = started[0]!.at - started[0]!.args.pushedAt;
    });
  } finally {
    other.close();
  }
  await t.step(`push → start took ${latency} ms`, () => {
    assert.ok(latency >= 0 && latency < 500, `push → start took ${latency} ms`);
  });
});

Deno.test("Worker.run() is not woken by a push to another queue on the same db", async () => {
  await using tmp = await tempDatabase();
  const storage = new SqliteStorage<Stamped>(tmp.db, new Config("mine").withPollInterval(LAZY));
  const { worker, started, becameIdle } = recordingWorker(storage, "mine-worker");
  await whileRunning(worker, becameIdle, async () => {
    const theirs = new SqliteStorage<Stamped>(tmp.db, "theirs");
    const id = await theirs.push({ pushedAt: Date.now() });
    const mine = await storage.push({ pushedAt: Date.now() });
    await waitUntil(() => started.length > 0, "my task to start", 5000);
    assert.deepEqual(started.map((s) => s.taskId), [mine]);
    assert.equal((await theirs.fetchById(id))!.status, "pending");
  });
});
