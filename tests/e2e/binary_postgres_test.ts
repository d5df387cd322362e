/**
 * End-to-end test of the compiled `apalis` executable (built with `bun build --compile`) on
 * PostgreSQL: the binary carries the PostgreSQL client, and runs every command against a
 * private cluster from a bare temp directory, with a PATH that has neither deno nor bun (nor a
 * node_modules anywhere near). Ignored when bun or PostgreSQL is missing, unless CI requires
 * them (`APALIS_BINARY_TEST=required`, `APALIS_POSTGRES_TEST=required`): then it fails.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { POSTGRES_SCHEMA_VERSION } from "../../postgres.ts";
import { waitUntil } from "../_helpers.ts";
import { POSTGRES_MISSING, tempPostgres } from "../_postgres.ts";
import { buildTestBinary, IGNORE_BINARY_TEST, warnIfIgnored } from "./_binary.ts";

warnIfIgnored("binary_postgres_test");

const POSTGRES_REQUIRED = Deno.env.get("APALIS_POSTGRES_TEST") === "required";
const SKIP_POSTGRES = POSTGRES_MISSING !== undefined && !POSTGRES_REQUIRED;

const QUEUE = "thumbs";
const TASKS = 8;

/** The script `work --exec` runs: echoes the payload back, refuses payloads marked "fail". */
const WORKER_SCRIPT = `#!/bin/sh
payload=$(cat)
case "$payload" in
  *fail*) echo "refusing task $APALIS_TASK_ID on attempt $APALIS_ATTEMPT" >&2; exit 4 ;;
esac
echo "{\\"payload\\": $payload, \\"attempt\\": $APALIS_ATTEMPT}"
`;

interface Run {
  code: number;
  out: string;
  err: string;
}

Deno.test({
  name:
    "apalis binary runs init, push, work, ls, show, stats, retry, kill, vacuum and board on a postgres:// URL" +
    (SKIP_POSTGRES ? ` (skipped: ${POSTGRES_MISSING})` : ""),
  ignore: IGNORE_BINARY_TEST || SKIP_POSTGRES,
  async fn(t) {
    await using db = await tempPostgres({ setup: false });
    const url = db.url.replace("://postgres@", "://postgres:bin-secret@"); // trust: ignored
    const location = db.url.replace("://postgres@", "://postgres:***@");
    const root = await Deno.makeTempDir({ prefix: "apalis_binary_pg_" });
    const bin = `${root}/bin/apalis`;
    const cwd = `${root}/work`; // nothing from the repository beside the binary or in the cwd
    const tools = `${root}/tools`; // PATH: sh and cat only, no deno or bun
    await Deno.mkdir(cwd);
    await Deno.mkdir(tools);
    for (const tool of ["sh", "cat"]) {
      await Deno.symlink(await which(tool), `${tools}/${tool}`);
    }
    const env = { PATH: tools, NO_COLOR: "1", HOME: root, APALIS_DB: url };

    const apalis = async (...args: string[]): Promise<Run> => {
      const output = await new Deno.Command(bin, { args, cwd, env, clearEnv: true }).output();
      const decoder = new TextDecoder();
      const run = {
        code: output.code,
        out: decoder.decode(output.stdout),
        err: decoder.decode(output.stderr),
      };
      assert.ok(!(run.out + run.err).includes("bin-secret"), "the password is never printed");
      return run;
    };
    const ok = async (...args: string[]): Promise<string> => {
      const run = await apalis(...args);
      assert.equal(run.code, 0, `apalis ${args.join(" ")} exited ${run.code}: ${run.err}`);
      return run.out;
    };
    const stats = async () => JSON.parse(await ok("stats", QUEUE, "--json")).queues[QUEUE];
    const spawnBin = (...args: string[]) =>
      new Deno.Command(bin, { args, cwd, env, clearEnv: true, stdout: "piped", stderr: "piped" })
        .spawn();

    try {
      await t.step(
        "the binary carries the PostgreSQL client: version asks the server",
        async () => {
          await buildTestBinary(bin);
          assert.match(
            await ok("version"),
            /^apalis \d+\.\d+\.\d+ \(bun [\d.]+, sqlite [\d.]+, postgresql \d+\.\d+\)\n$/,
          );
        },
      );

      await t.step("a database without apalis tables: stats exits 2, init sets it up", async () => {
        assert.deepEqual(await apalis("stats"), {
          code: 2,
          out: "",
          err:
            `apalis stats: Cannot use database '${location}': it has no apalis tables (run 'apalis init' first)\n`,
        });
        assert.equal(
          await ok("init"),
          `Initialized ${location} (schema version ${POSTGRES_SCHEMA_VERSION})\n`,
        );
      });

      const ids: string[] = [];
      let failing = "";
      await t.step("push enqueues an NDJSON file and a single task", async () => {
        const lines = Array.from({ length: TASKS }, (_, i) => JSON.stringify({ n: i + 1 }));
        await Deno.writeTextFile(`${cwd}/tasks.ndjson`, lines.join("\n") + "\n");
        ids.push(...(await ok("push", QUEUE, "--file", "tasks.ndjson")).trim().split("\n"));
        assert.equal(ids.length, TASKS);
        failing = (await ok("push", QUEUE, '{"n": 0, "fail": true}', "--max-attempts", "2"))
          .trim();
        assert.match(failing, /^[0-9A-Z]{26}$/);
        assert.equal((await stats()).pending, TASKS + 1);
      });

      await t.step("work --exec drains the queue and stops with exit 0 on SIGTERM", async () => {
        await Deno.writeTextFile(`${cwd}/thumbnail.sh`, WORKER_SCRIPT, { mode: 0o755 });
        const child = spawnBin(
          "work",
          QUEUE,
          "--exec",
          "./thumbnail.sh",
          "--concurrency",
          "3",
          "--backoff",
          "50ms",
        );
        const output = child.output();
        let exited = false;
        void child.status.then(() => exited = true);
        try {
          await waitUntil(
            async () => {
              if (exited) throw new Error("apalis work exited before the queue drained");
              const counts = await stats();
              return counts.done === TASKS && counts.killed === 1;
            },
            "the worker binary to drain the queue",
            60_000,
          );
        } finally {
          child.kill("SIGTERM");
        }
        const { code, stdout, stderr } = await output;
        const out = new TextDecoder().decode(stdout);
        const err = new TextDecoder().decode(stderr);
        assert.equal(code, 0, err);
        assert.match(out, new RegExp(`: ${TASKS} done, 1 failed, 1 killed \\(`));
        assert.match(err, new RegExp(`task ${failing} attempt 2/2 killed: CommandError: `));
        const workers = JSON.parse(await ok("workers", "--json"));
        assert.equal(workers.length, 1);
        assert.equal(workers[0].alive, false);
      });

      await t.step("ls --json lists the tasks; show prints a result and an error", async () => {
        const all = JSON.parse(await ok("ls", QUEUE, "--limit", "100", "--json"));
        assert.equal(all.length, TASKS + 1);
        assert.deepEqual(
          JSON.parse(await ok("ls", QUEUE, "--status", "killed", "--json")).map((task: {
            id: string;
          }) => task.id),
          [failing],
        );
        const done = JSON.parse(await ok("show", ids[2]!, "--json"));
        assert.equal(done.status, "done");
        assert.deepEqual(done.lastResult, { payload: { n: 3 }, attempt: 1 });
        const killed = await ok("show", failing);
        assert.match(killed, /status +killed/);
        assert.ok(killed.includes(`refusing task ${failing} on attempt 2`), killed);
      });

      await t.step("stats, retry and kill", async () => {
        const all = JSON.parse(await ok("stats", "--json"));
        assert.deepEqual(all.queues[QUEUE], {
          pending: 0,
          queued: 0,
          running: 0,
          done: TASKS,
          failed: 0,
          killed: 1,
          total: TASKS + 1,
        });
        assert.match(await ok("retry", failing), /is pending again/);
        assert.equal(JSON.parse(await ok("show", failing, "--json")).attempts, 0);
        assert.equal(
          await ok("kill", failing, "--reason", "not today"),
          `Task ${failing} is killed\n`,
        );
        assert.equal(
          JSON.parse(await ok("show", failing, "--json")).lastError.message,
          "not today",
        );
      });

      await t.step("board serves /api/overview from the binary, and stops on SIGTERM", async () => {
        const child = spawnBin("board", "--port", "0");
        const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
        try {
          let printed = "";
          while (!/http:\/\/127\.0\.0\.1:\d+\//.test(printed)) {
            const { value, done } = await reader.read();
            if (done) throw new Error(`apalis board exited before listening: ${printed}`);
            printed += value;
          }
          assert.ok(printed.includes(` for ${location} `), printed);
          const address = printed.match(/http:\/\/127\.0\.0\.1:\d+\//)![0];
          const overview = await (await fetch(`${address}api/overview`)).json();
          assert.equal(overview.queues[0].name, QUEUE);
          assert.equal(overview.queues[0].counts.done, TASKS);
          const page = await (await fetch(address)).text();
          assert.ok(page.includes(location), "the page names the database");
        } finally {
          child.kill("SIGTERM");
          reader.releaseLock();
        }
        const status = await child.status;
        await child.stdout.cancel().catch(() => {});
        await child.stderr.cancel();
        assert.equal(status.code, 0);
      });

      await t.step("vacuum deletes the finished tasks", async () => {
        assert.equal(await ok("vacuum"), `Deleted ${TASKS + 1} finished tasks\n`);
        assert.equal((await stats()).total, 0);
      });

      await t.step(
        "a server that does not answer: exit 1, one line without the password",
        async () => {
          const port = await unusedPort();
          const down = await apalis(
            "--db",
            `postgres://app:bin-secret@127.0.0.1:${port}/app`,
            "ls",
          );
          assert.deepEqual(down, {
            code: 1,
            out: "",
            err:
              `apalis ls: Cannot connect on PostgreSQL at postgres://app:***@127.0.0.1:${port}/app: connect ECONNREFUSED 127.0.0.1:${port}\n`,
          });
        },
      );
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

/** A TCP port on 127.0.0.1 that nothing listens on. */
function unusedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/** The absolute path of `tool` on this machine's PATH. */
async function which(tool: string): Promise<string> {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      const path = `${dir}/${tool}`;
      if ((await Deno.stat(path)).isFile) return await Deno.realPath(path);
    } catch {
      // not here
    }
  }
  throw new Error(`Cannot find '${tool}' on PATH`);
}
