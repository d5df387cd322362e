/**
 * Conformance: the host name a worker registers under (`WorkerBuilder.host`). By default the
 * machine's; a process may stand for another host (the PostgreSQL chaos drill's 4 "hosts").
 * Liveness follows the host: on PostgreSQL heartbeats alone decide, everywhere; on SQLite a
 * crashed worker of this host is dead at once (its pid is gone), while one registered under
 * another host stays alive until its heartbeat is stale.
 *
 * @module
 */
import assert from "node:assert/strict";
import { hostname } from "node:os";
import { Config, WorkerBuilder, WorkerNameTakenError } from "../../mod.ts";
import { crashChild, spawnChild } from "./_child.ts";
import { backendTest, start, waitUntil } from "./_suite.ts";

backendTest(
  "WorkerBuilder.host(name): the worker registers under that host name; without it, under this machine's",
  async (db) => {
    const storage = db.storage<number>("hosts");
    let started = 0;
    const build = (name: string) =>
      new WorkerBuilder(name)
        .backend(storage)
        .handleSignals(false)
        .onEvent((_ctx, event) => {
          if (event.type === "start") started++;
        });
    await using _posing = start(build("posing").host("node-7.example").build((n) => n));
    await using _local = start(build("local").build((n) => n));
    await waitUntil(() => started === 2, "both workers to register");
    const hosts = Object.fromEntries(
      (await storage.listWorkers("hosts")).map((worker) => [worker.name, worker.host]),
    );
    assert.deepEqual(hosts, { posing: "node-7.example", local: hostname() });
  },
);

Deno.test("WorkerBuilder.host() rejects an empty or non-string host name, naming the worker", () => {
  for (const bad of ["", undefined, 7]) {
    assert.throws(
      () => new WorkerBuilder("named").host(bad as string),
      (error: unknown) =>
        error instanceof TypeError &&
        error.message ===
          `Cannot build worker 'named' as 'host' must be a non-empty string: current value is ${
            JSON.stringify(bad)
          }`,
    );
  }
});

/** Both processes beat every 100 ms; a worker is dead after 4 s without a heartbeat. */
const ORPHAN_AFTER_MS = 4_000;

backendTest(
  "after kill -9, a worker process registered under another host keeps its name until its heartbeat is stale; on SQLite one of this host frees it at once (its pid is gone)",
  async (db, t) => {
    const config = new Config("crashed").setKeepAlive(100)
      .setReenqueueOrphanedAfter(ORPHAN_AFTER_MS);
    const args = [
      "--queue",
      "crashed",
      "--keep-alive-ms",
      "100",
      "--orphan-after-ms",
      String(ORPHAN_AFTER_MS),
    ];
    await using posing = spawnChild(db.location, "posing", [...args, "--host", "elsewhere"]);
    await using local = spawnChild(db.location, "local", args);
    await Promise.all([posing.ready, local.ready]);
    await crashChild(posing);
    await crashChild(local);
    const crashedAt = Date.now();

    /** Registers `name` in this process: null when it could, else why not. */
    const register = async (name: string): Promise<WorkerNameTakenError | null> => {
      let onStart!: () => void;
      const registered = new Promise<null>((resolve) => onStart = () => resolve(null));
      const worker = new WorkerBuilder(name)
        .backend(db.storage<number>(config))
        .handleSignals(false)
        .onEvent((_ctx, event) => {
          if (event.type === "start") onStart();
        })
        .build((n) => n);
      const running = start(worker);
      const outcome = await Promise.race([
        running.done.then(() => "exited before its start event", (error: unknown) => error),
        registered,
      ]);
      await running.stop();
      if (outcome === null) return null;
      assert.ok(outcome instanceof WorkerNameTakenError, `'${name}': ${String(outcome)}`);
      return outcome;
    };

    const posingTaken = await register("posing");
    const localTaken = await register("local");
    const checkedWithin = Date.now() - crashedAt;
    await t.step(`both checked ${checkedWithin} ms after the crashes`, () => {
      // Otherwise the heartbeats may be stale already, and the name free on any backend.
      assert.ok(checkedWithin < ORPHAN_AFTER_MS / 2, "checked well before the heartbeats aged");
    });
    assert.match(
      posingTaken?.message ?? "registered",
      /an instance is alive on host 'elsewhere'/,
      "the other host's crashed worker still holds its name",
    );
    if (db.backend === "sqlite") {
      assert.equal(localTaken, null, "this host's crashed worker frees its name at once");
    } else {
      assert.match(
        localTaken?.message ?? "registered",
        new RegExp(`an instance is alive on host '${hostname().replace(/\W/g, "\\$&")}'`),
        "PostgreSQL trusts heartbeats alone, whatever the host",
      );
    }

    await waitUntil(
      () => Date.now() - crashedAt > ORPHAN_AFTER_MS + 200,
      "the crashed workers' heartbeats to go stale",
      ORPHAN_AFTER_MS * 2,
    );
    assert.equal(await register("posing"), null, "a stale heartbeat frees the name");
  },
);
