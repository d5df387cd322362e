import assert from "node:assert/strict";
import { Task, WorkerBuilder } from "../../mod.ts";
import { PostgresStorage } from "../../postgres.ts";
import { FakeClock } from "../_helpers.ts";
import { pgTest, tempPostgres } from "../_postgres.ts";

pgTest(
  "the Admin of a PostgreSQL database lists, counts, previews, retries in batches and vacuums",
  async () => {
    await using db = await tempPostgres();
    const clock = new FakeClock();
    const emails = new PostgresStorage<{ body: string }>(db.pg, "emails", { clock });
    const admin = PostgresStorage.admin(db.pg, { clock });
    const big = await emails.push({ body: "x".repeat(10_000) });
    const ids = await emails.pushAll(
      Array.from({ length: 7 }, (_, n) => Task.builder({ body: `m${n}` }).maxAttempts(1).build()),
    );
    await new PostgresStorage<number>(db.pg, "numbers", { clock }).push(1);

    const [preview] = await admin.listTasks({
      queue: "emails",
      page: 8,
      pageSize: 1,
      previewBytes: 50,
    });
    assert.equal(preview?.id, big);
    assert.equal(preview?.args, undefined);
    assert.equal(preview?.cut?.args?.bytes, 10_011);
    const page = await admin.listTasks({ queue: "emails", pageSize: 3 });
    assert.deepEqual(page.map((t) => t.id), [...ids].reverse().slice(0, 3));

    const queues = await admin.listQueues();
    assert.deepEqual(queues.map((q) => [q.name, q.counts.pending, q.oldestDueAt]), [
      ["emails", 8, clock.now()],
      ["numbers", 1, clock.now()],
    ]);

    const worker = new WorkerBuilder("killer")
      .backend(emails)
      .concurrency(4)
      .handleSignals(false)
      .build((email) => {
        if (email.body.startsWith("m")) throw new Error("undeliverable");
      });
    const running = worker.run();
    await emails.waitFor([big, ...ids], { timeoutMs: 10_000 });
    await worker.stop();
    await running;
    assert.equal((await admin.stats("emails")).killed, 7);
    assert.equal(await admin.retryAll({ queue: "emails", status: "killed", batchSize: 3 }), 7);
    assert.equal((await admin.stats("emails")).pending, 7);
    assert.equal((await admin.stats("emails")).done, 1);

    clock.advance(60_000);
    assert.equal(await admin.vacuum({ olderThanMs: 120_000, batchSize: 2 }), 0, "too recent");
    assert.equal(await admin.vacuum({ batchSize: 2 }), 1, "the done task goes");
    assert.equal(await admin.fetchById(big), undefined);
    assert.equal((await admin.stats()).total, 8);
    assert.equal(await admin.delete(ids[0]!), true);
    assert.equal(await admin.delete(ids[0]!), false);
  },
);
