/**
 * `apalis pause`, `apalis resume` and `apalis limits` on a SQLite file and on a `postgres://`
 * URL; `apalis queues` shows what they set; bad input is exit 2 with nothing written.
 *
 * @module
 */
import assert from "node:assert/strict";
import { SqliteStorage } from "../../mod.ts";
import { PostgresStorage } from "../../postgres.ts";
import { captureIo, main } from "../../lib/cli/mod.ts";
import { tempDatabase } from "../_helpers.ts";
import { pgTest, tempPostgres } from "../_postgres.ts";
import { cli } from "./_postgres_cli.ts";

type Run = (args: string[]) => Promise<{ code: number; out: string; err: string }>;

async function scenario(run: Run, admin: () => SqliteStorage | PostgresStorage) {
  assert.deepEqual(await run(["pause", "email"]), {
    code: 0,
    out: "Queue email is paused; limits: -\n",
    err: "",
  });
  assert.equal(await admin().forQueue("email").isPaused(), true);
  const set = await run(["limits", "email", "--rate", "100/1s", "--concurrency", "5"]);
  assert.deepEqual(set, {
    code: 0,
    out: "Queue email is paused; limits: 100/1s, concurrency 5\n",
    err: "",
  });
  const group = await run(["limits", "email", "--group-concurrency", "1", "--rate", "10/m"]);
  assert.equal(group.out, "Queue email is paused; limits: 10/1m, concurrency 5, 1 per group\n");
  const shown = await run(["--json", "limits", "email"]);
  assert.deepEqual(JSON.parse(shown.out), {
    queue: "email",
    paused: true,
    limits: { rate: { limit: 10, perMs: 60_000 }, concurrency: 5, groupConcurrency: 1 },
  });
  const queues = await run(["queues"]);
  assert.equal(queues.code, 0, queues.err);
  assert.match(queues.out, /STATE +LIMITS\n/);
  assert.match(queues.out, /\nemail .* paused +10\/1m, concurrency 5, 1 per group\n/);
  const json = JSON.parse((await run(["queues", "--json"])).out);
  assert.deepEqual(
    json.map((q: { name: string; paused: boolean }) => [q.name, q.paused]),
    [["email", true]],
  );
  assert.equal(
    (await run(["limits", "email", "--concurrency", "none"])).out,
    "Queue email is paused; limits: 10/1m, 1 per group\n",
  );
  assert.deepEqual(await run(["resume", "email"]), {
    code: 0,
    out: "Queue email is active; limits: 10/1m, 1 per group\n",
    err: "",
  });
  assert.equal(
    (await run(["limits", "email", "--clear"])).out,
    "Queue email is active; limits: -\n",
  );
  assert.deepEqual(await admin().queueFlow("email"), { paused: false, limits: {} });

  // Bad input: exit 2, the option named, nothing written.
  await run(["limits", "email", "--concurrency", "3"]);
  for (
    const [args, message] of [
      [
        ["limits", "email", "--concurrency", "0"],
        /option '--concurrency' must be a whole number >= 1: got '0'/,
      ],
      [
        ["limits", "email", "--concurrency", "2.5"],
        /option '--concurrency' must be a whole number/,
      ],
      [["limits", "email", "--group-concurrency=-1"], /option '--group-concurrency' must be/],
      [["limits", "email", "--rate", "100"], /option '--rate' must be N\/DURATION/],
      [["limits", "email", "--rate", "0/1s"], /option '--rate' must be a whole number >= 1/],
      [["limits", "email", "--rate", "5/soon"], /option '--rate' must be a duration/],
      [["limits", "email", "--rate", "5/0ms"], /at least 1ms/],
      [["limits"], /QUEUE/],
      [["pause"], /QUEUE/],
      [["pause", ""], /argument QUEUE must be a non-empty string/],
    ] as const
  ) {
    const result = await run([...args]);
    assert.equal(result.code, 2, `${args.join(" ")}: ${result.err}`);
    assert.match(result.err, message);
  }
  assert.deepEqual(await admin().queueFlow("email"), { paused: false, limits: { concurrency: 3 } });
}

Deno.test("apalis pause, resume and limits on a SQLite file; queues shows them", async () => {
  await using temp = await tempDatabase();
  const run: Run = async (args) => {
    const io = captureIo({ env: { APALIS_DB: temp.path } });
    const code = await main(args, io);
    return { code, out: io.out, err: io.err };
  };
  await scenario(run, () => new SqliteStorage(temp.db));
});

pgTest("apalis pause, resume and limits on a postgres:// URL; queues shows them", async () => {
  await using db = await tempPostgres();
  await scenario((args) => cli(db.url, args), () => new PostgresStorage(db.pg));
});
