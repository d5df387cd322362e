import assert from "node:assert/strict";
import { SqliteStorage, WorkerBuilder } from "../../mod.ts";
import { captureIo, main } from "../../lib/cli/mod.ts";
import { FakeClock, tempDatabase } from "../_helpers.ts";

async function run(path: string, args: string[]) {
  const io = captureIo({ env: { APALIS_DB: path } });
  const code = await main(args, io);
  return { code, out: io.out, err: io.err };
}

const DAY = 86_400_000;

Deno.test("vacuumCommand.run() deletes every done and killed task, keeping the others", async () => {
  await using temp = await tempDatabase();
  const storage = new SqliteStorage(temp.db, "email");
  const done = await storage.push("done");
  const worker = new WorkerBuilder("vac").backend(storage).handleSignals(false).build(() => "ok");
  const running = worker.run();
  await storage.waitFor([done]);
  await worker.stop();
  await running;
  const killed = await storage.forQueue("sms").push("killed");
  await storage.kill(killed);
  const pending = await storage.push("pending");

  const { code, out, err } = await run(temp.path, ["vacuum"]);
  assert.equal(err, "");
  assert.equal(code, 0);
  assert.equal(out, "Deleted 2 finished tasks\n");
  assert.equal(await storage.fetchById(done), undefined);
  assert.equal(await storage.fetchById(killed), undefined);
  assert.equal((await storage.fetchById(pending))?.status, "pending");
  assert.equal((await run(temp.path, ["vacuum"])).out, "Deleted 0 finished tasks\n");
});

Deno.test("vacuumCommand.run() with --older-than deletes only tasks finished that long ago", async () => {
  await using temp = await tempDatabase();
  const old = new SqliteStorage(temp.db, "email", { clock: new FakeClock(Date.now() - 8 * DAY) });
  const oldId = await old.push(1);
  await old.kill(oldId);
  const storage = new SqliteStorage(temp.db, "email");
  const recent = await storage.push(2);
  await storage.kill(recent);

  const week = await run(temp.path, ["vacuum", "--older-than", "7d"]);
  assert.equal(week.code, 0);
  assert.equal(week.out, "Deleted 1 finished task\n");
  assert.equal(await storage.fetchById(oldId), undefined);
  assert.equal((await storage.fetchById(recent))?.status, "killed");

  const json = await run(temp.path, ["vacuum", "--older-than=1d", "--json"]);
  assert.deepEqual(JSON.parse(json.out), { deleted: 0 });
  assert.deepEqual(JSON.parse((await run(temp.path, ["vacuum", "--json"])).out), { deleted: 1 });
});

Deno.test("vacuumCommand.run() rejects a bad --older-than with exit 2 and deletes nothing", async () => {
  await using temp = await tempDatabase();
  const storage = new SqliteStorage(temp.db, "email");
  const id = await storage.push(1);
  await storage.kill(id);
  for (
    const args of [["vacuum", "--older-than", "a week"], ["vacuum", "7d"], [
      "vacuum",
      "--older-than",
    ]]
  ) {
    const { code, out, err } = await run(temp.path, args);
    assert.equal(code, 2, args.join(" "));
    assert.equal(out, "");
    assert.match(err, /^apalis vacuum: /);
  }
  assert.equal((await storage.fetchById(id))?.status, "killed");
});
