import assert from "node:assert/strict";
import { Config, SqliteStorage, Task, WorkerBuilder } from "../../mod.ts";
import { tempDatabase } from "../_helpers.ts";
import { QUEUE, run, work } from "./_work.ts";

Deno.test("workCommand.run() applies --retain-done and --retain-killed to the queue", async () => {
  await using temp = await tempDatabase();
  // Tasks finished a day ago: run and killed under a clock a day behind this host's.
  const yesterday = { now: () => Date.now() - 86_400_000 };
  const kept = new Config(QUEUE).setRetention({ done: "forever", killed: "forever" });
  const old = new SqliteStorage<number>(temp.db, kept, { clock: yesterday });
  const done = await old.pushAll([1, 2, 3].map((n) => new Task(n)));
  const worker = new WorkerBuilder("yesterday").backend(old).handleSignals(false).build((n) => n);
  const running = worker.run();
  await old.waitFor(done);
  await worker.stop();
  await running;
  const killed = await old.pushAll([4, 5].map((n) => new Task(n, { runAfter: 3_600_000 })));
  for (const id of killed) await old.kill(id);

  const { code } = await work(
    temp,
    ["--exec", "cat > /dev/null", "--retain-done", "12h", "--retain-killed", "forever"],
    async () => (await old.stats(QUEUE)).total === killed.length,
    { what: "the tasks done a day ago to be deleted" },
  );
  assert.equal(code, 0);
  const left = await old.listTasks({ queue: QUEUE });
  assert.deepEqual(left.map((task) => task.id).sort(), [...killed].sort());
});

Deno.test("workCommand.run() rejects a bad --retain-done or --retain-killed with exit 2", async () => {
  await using temp = await tempDatabase();
  for (
    const [option, value, message] of [
      ["--retain-done", "7", /option '--retain-done' needs a unit: '7' could be 7s or 7ms/],
      [
        "--retain-killed",
        "always",
        /option '--retain-killed' must be a duration like .* \(or 'forever' to keep them\)/,
      ],
    ] as const
  ) {
    const { code, err } = await run(temp.path, ["work", QUEUE, "--exec", "true", option, value]);
    assert.equal(code, 2, err);
    assert.match(err, message);
  }
  assert.equal((await new SqliteStorage(temp.db, QUEUE).listWorkers()).length, 0, "no worker ran");
});
