import assert from "node:assert/strict";
import { DEFAULT_MAX_ATTEMPTS } from "../../lib/storage/task.ts";
import { DuplicateTaskError, Task } from "../../mod.ts";
import { MsgPackCodec } from "../../msgpack.ts";
import { PostgresStorage } from "../../postgres.ts";
import { FakeClock } from "../_helpers.ts";
import { pgTest, tempPostgres } from "../_postgres.ts";

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

pgTest(
  "PostgresStorage.push() stores a pending task with the clock's times and defaults",
  async () => {
    await using db = await tempPostgres();
    const clock = new FakeClock();
    const storage = new PostgresStorage<{ to: string }>(db.pg, "email", { clock });
    const id = await storage.push({ to: "ada@example.com" });
    assert.match(id, ULID);
    assert.deepEqual(await storage.fetchById(id), {
      id,
      queue: "email",
      status: "pending",
      args: { to: "ada@example.com" },
      attempts: 0,
      maxAttempts: DEFAULT_MAX_ATTEMPTS,
      priority: 0,
      runAt: clock.now(),
      createdAt: clock.now(),
      lockBy: null,
      lockAt: null,
      doneAt: null,
      lastResult: undefined,
      lastError: undefined,
      meta: {},
      runId: null,
    });
  },
);

pgTest(
  "PostgresStorage without a clock takes times from the database server, a delay counting from its time",
  async () => {
    await using db = await tempPostgres();
    const storage = new PostgresStorage<number>(db.pg, "later");
    const before = await storage.backend.timeNow();
    const now = await storage.push(1);
    const later = await storage.push(2, { runAfter: 60_000 });
    const after = await storage.backend.timeNow();
    const first = (await storage.fetchById(now))!;
    const second = (await storage.fetchById(later))!;
    assert.ok(
      first.createdAt >= before && first.createdAt <= after,
      "created at the server's time",
    );
    assert.equal(first.runAt, first.createdAt);
    assert.equal(second.runAt - second.createdAt, 60_000, "due 60 s after its creation");
    assert.ok(databaseNowOf(storage) === undefined);
    // Its copies too: time still comes from the database.
    assert.ok(databaseNowOf(storage.withCodec(MsgPackCodec)) === undefined);
    assert.ok(databaseNowOf(storage.forQueue("other")) === undefined);
    const clocked = new PostgresStorage<number>(db.pg, "clocked", { clock: new FakeClock() });
    assert.equal(databaseNowOf(clocked.forQueue("other")), Date.UTC(2026, 0, 1));
  },
);

function databaseNowOf(storage: PostgresStorage<unknown>): number | undefined {
  return storage.databaseNow();
}

pgTest(
  "PostgresStorage.push() rejects a duplicate id with DuplicateTaskError and keeps the first task",
  async () => {
    await using db = await tempPostgres();
    const storage = new PostgresStorage<string>(db.pg, "q");
    await storage.push("first", { id: "task-1" });
    await assert.rejects(
      () => storage.push("second", { id: "task-1" }),
      (error: unknown) => error instanceof DuplicateTaskError && error.id === "task-1",
    );
    assert.equal((await storage.fetchById("task-1"))?.args, "first");
    assert.equal((await storage.stats()).total, 1);
  },
);

pgTest(
  "PostgresStorage.pushAll() writes all tasks or none: a duplicate id in the batch or in the table writes nothing",
  async () => {
    await using db = await tempPostgres();
    const storage = new PostgresStorage<number>(db.pg, "q");
    const ids = await storage.pushAll(
      Array.from({ length: 500 }, (_, n) => Task.builder(n).build()),
    );
    assert.equal(ids.length, 500);
    assert.equal((await storage.stats()).pending, 500);
    await assert.rejects(
      () =>
        storage.pushAll([
          Task.builder(1).id("a").build(),
          Task.builder(2).id("b").build(),
          Task.builder(3).id("a").build(),
        ]),
      (error: unknown) => error instanceof DuplicateTaskError && error.id === "a",
    );
    await assert.rejects(
      () => storage.pushAll([Task.builder(1).id("c").build(), Task.builder(2).id(ids[7]!).build()]),
      (error: unknown) => error instanceof DuplicateTaskError && error.id === ids[7],
    );
    assert.equal((await storage.stats()).total, 500, "nothing of the failed batches was written");
    const streamed = await storage.pushStream([1, 2, 3, 4, 5], { batchSize: 2 });
    assert.equal(streamed.length, 5);
  },
);

pgTest("PostgresStorage keeps every push option, and a codec's bytes, as SQLite does", async () => {
  await using db = await tempPostgres();
  const clock = new FakeClock();
  const storage = new PostgresStorage<Uint8Array>(db.pg, "bytes", { clock }).withCodec(
    MsgPackCodec,
  );
  const payload = new Uint8Array([0, 1, 2, 255]);
  const id = await storage.pushTask(
    Task.builder(payload).priority(7).maxAttempts(2).runAfter(500).meta("k", "v").backoff({
      initialMs: 5,
    }).build(),
  );
  const task = (await storage.fetchById(id))!;
  assert.deepEqual(new Uint8Array(task.args), payload);
  assert.equal(task.priority, 7);
  assert.equal(task.maxAttempts, 2);
  assert.equal(task.runAt, clock.now() + 500);
  assert.deepEqual(task.meta, { k: "v" });
  const [row] = await db.pg.sql<{ backoff: string }[]>`
    SELECT backoff FROM apalis_tasks WHERE id = ${id}`;
  assert.equal(JSON.parse(row!.backoff).initialMs, 5);
});

pgTest(
  "PostgresStorage.pushTx() commits the task with the caller's writes, and a rollback leaves neither",
  async () => {
    await using db = await tempPostgres();
    await db.pg.sql`CREATE TABLE users (email text PRIMARY KEY)`;
    const welcome = new PostgresStorage<string>(db.pg, "welcome");
    const id = await db.pg.sql.begin(async (tx) => {
      await tx`INSERT INTO users (email) VALUES ('ada@example.com')`;
      return await welcome.pushTx(tx, "ada@example.com");
    });
    assert.equal((await welcome.fetchById(id))?.args, "ada@example.com");

    let pushed: string | undefined;
    await assert.rejects(
      () =>
        db.pg.sql.begin(async (tx) => {
          await tx`INSERT INTO users (email) VALUES ('bob@example.com')`;
          pushed = await welcome.pushTx(tx, "bob@example.com");
          throw new Error("the caller's transaction fails");
        }),
      /the caller's transaction fails/,
    );
    assert.ok(pushed);
    assert.equal(await welcome.fetchById(pushed), undefined, "the task rolled back");
    const users = await db.pg.sql`SELECT email FROM users`;
    assert.deepEqual(users.map((u) => u.email), ["ada@example.com"]);

    await assert.rejects(
      () => db.pg.sql.begin((tx) => welcome.pushTx(tx, "again", { id })),
      (error: unknown) => error instanceof DuplicateTaskError && error.id === id,
    );
  },
);

pgTest(
  "PostgresStorage.pushTx() inside a transaction is invisible to workers until it commits",
  async () => {
    await using db = await tempPostgres();
    const storage = new PostgresStorage<string>(db.pg, "tx");
    let release!: () => void;
    const held = new Promise<void>((resolve) => release = resolve);
    let id = "";
    const committed = db.pg.sql.begin(async (tx) => {
      id = await storage.pushTx(tx, "later");
      await held;
    });
    while (id === "") await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(await storage.fetchById(id), undefined, "not visible before the commit");
    release();
    await committed;
    assert.equal((await storage.fetchById(id))?.status, "pending");
  },
);
