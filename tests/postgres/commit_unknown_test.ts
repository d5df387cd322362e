import assert from "node:assert/strict";
import type { FlushRequest } from "../../lib/backend/types.ts";
import { connectPostgres, PostgresBackend, PostgresStorage } from "../../postgres.ts";
import { pgTest, tempPostgres } from "../_postgres.ts";

/**
 * A TCP proxy to the cluster whose answers can be muted: the server still gets every byte the
 * client sends (a COMMIT commits) but the client hears nothing, then its sockets are cut, as when
 * a network drops between a commit and its answer.
 */
class MutingProxy {
  readonly port: number;
  #listener: Deno.Listener;
  #clients = new Set<Deno.Conn>();
  #servers = new Set<Deno.Conn>();
  #muted = false;
  #done: Promise<void>;

  constructor(target: number) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#done = this.#accept(target);
  }

  async #accept(target: number): Promise<void> {
    for await (const client of this.#listener) {
      const server = await Deno.connect({ hostname: "127.0.0.1", port: target });
      this.#clients.add(client);
      this.#servers.add(server);
      void this.#pipe(client, server, false);
      void this.#pipe(server, client, true);
    }
  }

  async #pipe(from: Deno.Conn, to: Deno.Conn, answers: boolean): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await from.read(buffer);
        if (n === null) break;
        if (answers && this.#muted) continue;
        let written = 0;
        while (written < n) written += await to.write(buffer.subarray(written, n));
      }
    } catch {
      // a side was closed
    }
    for (const conn of [from, to]) {
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  }

  /** From now on, the server's answers are dropped. */
  mute(): void {
    this.#muted = true;
  }

  /** Closes every connection open now and answers new ones again. */
  cut(): void {
    for (const conn of [...this.#clients, ...this.#servers]) {
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
    this.#clients.clear();
    this.#servers.clear();
    this.#muted = false;
  }

  async close(): Promise<void> {
    this.cut();
    this.#listener.close();
    await this.#done.catch(() => {});
  }
}

function request(over: Partial<FlushRequest>): FlushRequest {
  return {
    queue: "q",
    worker: "victim",
    acks: [],
    start: [],
    claim: { direct: 0, ahead: 0, textArgs: false },
    ...over,
  };
}

pgTest(
  "a flush whose COMMIT is never answered: the next flush gives back what it claimed, and a resent ack counts as recorded",
  async () => {
    await using db = await tempPostgres();
    // Commits of the victim's transactions take 800 ms while the flag is on: time to mute.
    await db.pg.sql.unsafe(`
    CREATE TABLE slow_commit (active boolean NOT NULL);
    INSERT INTO slow_commit VALUES (false);
    CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.lock_by = 'victim' AND (SELECT active FROM slow_commit)
         AND current_setting('test.slept', true) IS DISTINCT FROM 'yes' THEN
        PERFORM set_config('test.slept', 'yes', true);
        PERFORM pg_sleep(0.8);
      END IF;
      RETURN NULL;
    END $$;
    CREATE CONSTRAINT TRIGGER slow_commit AFTER UPDATE ON apalis_tasks
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();`).simple();
    const storage = new PostgresStorage<string>(db.pg, "q");
    const [x] = await storage.pushAll(["x", "a", "b", "c"].map((args) => ({ args, options: {} })));
    const proxy = new MutingProxy(db.cluster.port);
    const proxied = await connectPostgres(
      db.url.replace(`:${db.cluster.port}/`, `:${proxy.port}/`),
      {
        max: 1,
      },
    );
    try {
      const backend = PostgresBackend.of(proxied);
      const first = await backend.workerFlush(
        request({ claim: { direct: 1, ahead: 0, textArgs: false } }),
      );
      assert.deepEqual(first.running.map((row) => row.id), [x]);
      const ackX = {
        ack: {
          id: x!,
          queue: "q",
          attempt: 1,
          status: "done" as const,
          result: null,
          error: null,
          retryInMs: null,
          doneAt: Date.now(),
        },
      };

      await db.pg.sql`UPDATE slow_commit SET active = true`;
      const lost = backend.workerFlush(
        request({ acks: [ackX], claim: { direct: 3, ahead: 0, textArgs: false } }),
      );
      const outcome = lost.then(() => "answered", (error: Error) => error);
      await new Promise((resolve) => setTimeout(resolve, 300)); // COMMIT sent, sleeping
      proxy.mute();
      await new Promise((resolve) => setTimeout(resolve, 1200)); // committed, answer dropped
      proxy.cut();
      const error = await outcome;
      assert.ok(error instanceof Error, `the flush was ${error}`);
      assert.equal(error.name, "PostgresOperationError");
      await db.pg.sql`UPDATE slow_commit SET active = false`;

      // It did commit: x is done, and a, b, c are running under the victim, which never got them.
      const held = await db.pg.sql<{ id: string; status: string; attempts: number }[]>`
      SELECT id, status, attempts FROM apalis_tasks ORDER BY id`;
      assert.deepEqual(held.map((r) => [r.status, r.attempts]), [
        ["done", 1],
        ["running", 1],
        ["running", 1],
        ["running", 1],
      ]);

      // The worker keeps its ack and flushes again: recorded, not fenced; the claims go back.
      const next = await backend.workerFlush(request({ acks: [ackX] }));
      assert.deepEqual([...next.fenced], [], "the resent ack had been recorded");
      const after = await db.pg.sql<{ status: string; attempts: number; lock_by: string | null }[]>`
      SELECT status, attempts, lock_by FROM apalis_tasks WHERE id <> ${x!} ORDER BY id`;
      assert.deepEqual(after.map((r) => [r.status, r.attempts, r.lock_by]), [
        ["pending", 0, null],
        ["pending", 0, null],
        ["pending", 0, null],
      ]);
      const [counted] = await db.pg.sql<{ done: number }[]>`
      SELECT sum(done)::bigint AS done FROM apalis_throughput`;
      assert.equal(counted!.done, 1, "the outcome is counted once");
    } finally {
      await proxied.close();
      await proxy.close();
    }
  },
);
