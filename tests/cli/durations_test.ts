import assert from "node:assert/strict";
import { SqliteStorage } from "../../mod.ts";
import { captureIo, main } from "../../lib/cli/mod.ts";
import { tempDatabase } from "../_helpers.ts";

/** Every duration option of every command, with the arguments it needs to run. */
const DURATION_OPTIONS: [command: string[], option: string][] = [
  [["push", "q", "{}"], "--delay"],
  [["work", "q", "--exec", "cat"], "--timeout"],
  [["work", "q", "--exec", "cat"], "--backoff"],
  [["work", "q", "--exec", "cat"], "--shutdown-timeout"],
  [["stats", "--watch"], "--interval"],
  [["vacuum"], "--older-than"],
  [["board", "--port", "0"], "--refresh"],
];

Deno.test("every duration option refuses a number without a unit with exit 2, suggesting s or ms", async () => {
  await using temp = await tempDatabase();
  const storage = new SqliteStorage(temp.db);
  await storage.forQueue("q").push({ kept: true });
  for (const [command, option] of DURATION_OPTIONS) {
    for (const [value, suggestion] of [["5", "5s or 5ms"], ["2.5", "2.5s or 2.5ms"]]) {
      const io = captureIo({ env: { APALIS_DB: temp.path } });
      const code = await main([...command, option, value!], io);
      const shown = `${command.join(" ")} ${option} ${value}`;
      assert.equal(code, 2, `${shown}: ${io.err}`);
      assert.equal(io.out, "", shown);
      assert.equal(
        io.err,
        `apalis ${
          command[0]
        }: option '${option}' needs a unit: '${value}' could be ${suggestion} (units: ms, s, m, h, d, w)\n`,
        shown,
      );
    }
  }
  // Nothing ran: the one task is still there and pending, no worker registered.
  assert.deepEqual((await storage.stats("q")).pending, 1);
  assert.deepEqual((await storage.stats("q")).total, 1);
  assert.deepEqual(await storage.listWorkers(), []);
});

Deno.test("duration options take every unit, and a bare 0", async () => {
  await using temp = await tempDatabase();
  const storage = new SqliteStorage(temp.db).forQueue("q");
  const cases: [string, number][] = [
    ["0", 0],
    ["250ms", 250],
    ["1.5s", 1500],
    ["2m", 120_000],
    ["1h", 3_600_000],
    ["1d", 86_400_000],
    ["1w", 604_800_000],
  ];
  for (const [delay, ms] of cases) {
    const io = captureIo({ env: { APALIS_DB: temp.path } });
    const before = Date.now();
    assert.equal(await main(["push", "q", "{}", "--delay", delay], io), 0, io.err);
    const task = await storage.fetchById(io.out.trim());
    const after = Date.now();
    assert.ok(task!.runAt >= before + ms && task!.runAt <= after + ms, `--delay ${delay}`);
  }
});
