import assert from "node:assert/strict";
import type { FlushRequest, NewTaskRow } from "../../lib/backend/types.ts";
import { PostgresBackend } from "../../postgres.ts";
import { pgTest, tempPostgres } from "../_postgres.ts";

const T0 = Date.UTC(2026, 0, 1);

function row(id: string, over: Partial<NewTaskRow> = {}): NewTaskRow {
  return {
    id,
    queue: "q",
    args: new TextEncoder().encode(JSON.stringify(id)),
    maxAttempts: 3,
    priority: 0,
    runAt: T0,
    createdAt: T0,
    meta: null,
    backoff: null,
    ...over,
  };
}

function flush(over: Partial<FlushRequest> = {}): FlushRequest {
  return {
    queue: "q",
    worker: "w",
    now: T0,
    acks: [],
    start: [],
    claim: { direct: 0, ahead: 0, textArgs: false },
    ...over,
  };
}

pgTest(
  "PostgresBackend claims in claim order (priority DESC, run_at, id) and only due tasks, and says when the next falls due",
  async () => {
    await using db = await tempPostgres();
    const backend = PostgresBackend.of(db.pg);
    await backend.taskInsertMany([
      row("c", { priority: 1, runAt: T0 - 10 }),
      row("a", { priority: 1, runAt: T0 - 10 }),
      row("b", { priority: 1, runAt: T0 - 20 }),
      row("d", { priority: 5, runAt: T0 }),
      row("e", { priority: 0, runAt: T0 - 30 }),
      row("later", { priority: 9, runAt: T0 + 1000 }),
    ]);
    const first = await backend.workerFlush(
      flush({ claim: { direct: 3, ahead: 0, textArgs: false } }),
    );
    assert.deepEqual(first.running.map((r) => r.id), ["d", "b", "a"]);
    assert.ok(first.running.every((r) => r.status === "running" && r.attempts === 1));
    assert.equal(first.nextDueInMs, undefined, "a full claim says nothing of the next due");
    const second = await backend.workerFlush(
      flush({ claim: { direct: 5, ahead: 0, textArgs: false } }),
    );
    assert.deepEqual(second.running.map((r) => r.id), ["c", "e"]);
    assert.equal(second.nextDueInMs, 1000, "the scheduled task falls due in 1 s");
    const held = await backend.taskGetMany(["a", "d"]);
    assert.ok(held.every((t) => t.lock_by === "w" && t.lock_at === T0));
  },
);

pgTest(
  "PostgresBackend claims ahead only tasks not on their last attempt, and a release gives their attempt back",
  async () => {
    await using db = await tempPostgres();
    const backend = PostgresBackend.of(db.pg);
    await backend.taskInsertMany([
      row("t1", { maxAttempts: 1 }),
      row("t2", { maxAttempts: 1 }),
      row("t3", { maxAttempts: 2 }),
      row("t4", { maxAttempts: 1 }),
      row("t5", { maxAttempts: 5 }),
    ]);
    const claimed = await backend.workerFlush(
      flush({ claim: { direct: 1, ahead: 10, textArgs: false } }),
    );
    assert.deepEqual(claimed.running.map((r) => r.id), ["t1"]);
    assert.deepEqual(claimed.ahead.map((r) => r.id), ["t3", "t5"]);
    await backend.workerUnregister({
      name: "w",
      instanceId: "i",
      ahead: claimed.ahead.map((r) => ({ id: r.id, attempts: r.attempts })),
      now: T0,
    });
    const after = await backend.taskGetMany(["t3", "t5"]);
    assert.ok(after.every((t) => t.status === "pending" && t.attempts === 0 && t.lock_by === null));
  },
);

pgTest(
  "PostgresBackend fences an ack whose attempt is over (killed or claimed again) and counts each outcome once",
  async () => {
    await using db = await tempPostgres();
    const backend = PostgresBackend.of(db.pg);
    await backend.taskInsertMany([row("x"), row("y"), row("z")]);
    await backend.workerFlush(flush({ claim: { direct: 3, ahead: 0, textArgs: false } }));
    assert.equal(await backend.taskKill("y", '{"name":"KilledError","message":"no"}', T0), true);
    const ack = (id: string, attempt = 1) => ({
      ack: {
        id,
        queue: "q",
        attempt,
        status: "done" as const,
        result: id === "z" ? "text result" : new Uint8Array([1, 2]),
        error: null,
        retryInMs: null,
        doneAt: T0 + 5,
      },
    });
    const result = await backend.workerFlush(flush({ acks: [ack("x"), ack("y"), ack("z", 2)] }));
    assert.deepEqual([...result.fenced].sort(), ["y", "z"]);
    const [x, y, z] = await Promise.all(["x", "y", "z"].map((id) => backend.taskGet(id)));
    assert.equal(x?.status, "done");
    assert.deepEqual(new Uint8Array(x!.last_result!), new Uint8Array([1, 2]));
    assert.equal(x?.done_at, T0 + 5);
    assert.equal(y?.status, "killed");
    assert.equal(z?.status, "running");
    const again = await backend.workerFlush(flush({ acks: [ack("x")] }));
    assert.deepEqual([...again.fenced], ["x"], "an ack recorded once is fenced the second time");
    const minutes = await backend.throughputSince(T0 - 60_000);
    assert.deepEqual(
      minutes.map(({ queue, done, failed, killed }) => ({ queue, done, failed, killed })),
      [{ queue: "q", done: 1, failed: 0, killed: 1 }],
    );
  },
);

pgTest(
  "PostgresBackend records a failure's retry time from its finish time, and the retried task is claimed again only then",
  async () => {
    await using db = await tempPostgres();
    const backend = PostgresBackend.of(db.pg);
    await backend.taskInsertMany([row("r")]);
    await backend.workerFlush(flush({ claim: { direct: 1, ahead: 0, textArgs: false } }));
    const failed = await backend.workerFlush(flush({
      now: T0 + 10,
      acks: [{
        ack: {
          id: "r",
          queue: "q",
          attempt: 1,
          status: "failed",
          result: null,
          error: '{"name":"Error","message":"boom"}',
          retryInMs: 250,
          doneAt: T0 + 10,
        },
      }],
      claim: { direct: 1, ahead: 0, textArgs: false },
    }));
    assert.deepEqual(failed.running, [], "not due yet");
    assert.equal(failed.nextDueInMs, 250);
    const stored = await backend.taskGet("r");
    assert.equal(stored?.status, "failed");
    assert.equal(stored?.run_at, T0 + 260);
    const retried = await backend.workerFlush(
      flush({ now: T0 + 260, claim: { direct: 1, ahead: 0, textArgs: false } }),
    );
    assert.deepEqual(retried.running.map((r) => [r.id, r.attempts]), [["r", 2]]);
  },
);

pgTest(
  "PostgresBackend claims across more than 64 priorities in order, and finds the next due among them",
  async () => {
    await using db = await tempPostgres();
    const backend = PostgresBackend.of(db.pg);
    const rows = Array.from({ length: 100 }, (_, i) =>
      row(`p${String(i).padStart(3, "0")}`, {
        priority: i,
        runAt: i % 2 === 0 ? T0 : T0 + 1000 + i,
      }));
    await backend.taskInsertMany(rows);
    const claimed = await backend.workerFlush(
      flush({ claim: { direct: 100, ahead: 0, textArgs: false } }),
    );
    const due = rows.filter((_, i) => i % 2 === 0).map((r) => r.id).reverse();
    assert.deepEqual(claimed.running.map((r) => r.id), due);
    assert.equal(claimed.nextDueInMs, 1001);
  },
);

pgTest(
  "PostgresBackend refuses a shared storage's claims for other queues with a clear error",
  async () => {
    await using db = await tempPostgres();
    const backend = PostgresBackend.of(db.pg);
    await assert.rejects(
      () => backend.workerFlush(flush({ shared: [{ queue: "other", worker: "o", limit: 1 }] })),
      /shared storage \(SharedSqliteStorage\) is SQLite-only/,
    );
  },
);

pgTest(
  "PostgresBackend.isStorageFull is true for the server's disk_full error (53100) and false for others",
  async () => {
    await using db = await tempPostgres();
    const backend = PostgresBackend.of(db.pg);
    // A trigger that fails the insert of one task as a full disk would (the same SQLSTATE).
    await db.pg.sql.unsafe(`
    CREATE FUNCTION fill_disk() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.id = 'full' THEN RAISE EXCEPTION 'could not extend file' USING ERRCODE = 'disk_full'; END IF;
      IF NEW.id = 'other' THEN RAISE EXCEPTION 'something else' USING ERRCODE = 'P0001'; END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER fill_disk BEFORE INSERT ON apalis_tasks FOR EACH ROW EXECUTE FUNCTION fill_disk();`)
      .simple();
    const full = await backend.taskInsertMany([row("full")]).catch((error) => error);
    assert.equal(full.name, "PostgresOperationError");
    assert.equal(full.code, "53100");
    assert.match(
      full.message,
      /Cannot push task to queue 'q' on PostgreSQL at .*could not extend file/,
    );
    assert.equal(backend.isStorageFull(full), true);
    const other = await backend.taskInsertMany([row("other")]).catch((error) => error);
    assert.equal(other.code, "P0001");
    assert.equal(backend.isStorageFull(other), false);
    assert.equal(backend.isStorageFull(new Error("plain")), false);
  },
);

pgTest(
  "PostgresBackend records a failed attempt instead, and none of the step's writes, when its effects fail",
  async () => {
    await using db = await tempPostgres();
    const backend = PostgresBackend.of(db.pg);
    await backend.taskInsertMany([row("taken")]);
    await backend.runStart({ id: "run-1", queue: "q", now: T0 }, row("step-1", { runId: "run-1" }));
    const claimed = await backend.workerFlush(
      flush({ claim: { direct: 5, ahead: 0, textArgs: false } }),
    );
    assert.deepEqual(claimed.running.map((r) => r.id).sort(), ["step-1", "taken"]);
    const ack = {
      id: "step-1",
      queue: "q",
      attempt: 1,
      status: "done" as const,
      result: null,
      error: null,
      retryInMs: null,
      doneAt: T0 + 1,
      inRun: true,
    };
    const failedAck = {
      ...ack,
      status: "failed" as const,
      error: '{"name":"Error","message":"x"}',
      retryInMs: 100,
    };
    let seen: unknown;
    const result = await backend.workerFlush(flush({
      now: T0 + 1,
      acks: [{
        ack,
        run: {
          id: "run-1",
          effects: [
            { kind: "name", workflow: "wf", graph: "{}" },
            {
              kind: "enqueue",
              tasks: [{
                id: "taken", // exists: the insert fails with a unique violation
                queue: "q",
                args: new Uint8Array([1]),
                maxAttempts: 3,
                priority: 0,
                delayMs: 0,
                meta: null,
                step: '{"i":1}',
              }],
            },
          ],
        },
        onEffectsFailed: (error) => {
          seen = error;
          return failedAck;
        },
      }],
    }));
    assert.equal((seen as { code?: string }).code, "23505");
    assert.deepEqual([...result.replaced!.keys()], ["step-1"]);
    const step = await backend.taskGet("step-1");
    assert.equal(step?.status, "failed");
    assert.equal(step?.run_at, T0 + 101);
    const run = await backend.runGet("run-1");
    assert.equal(run?.workflow, null, "the naming rolled back with the failed enqueue");
    assert.equal(run?.status, "running");
  },
);
