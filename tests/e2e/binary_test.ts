/**
 * End-to-end test of the compiled `apalis` executable (built with `bun build --compile`): every
 * step runs the binary itself, from a bare temp directory holding nothing but the database and
 * the inputs, with a PATH that has neither deno nor bun. Ignored when bun is not installed,
 * unless `APALIS_BINARY_TEST=required` (CI), where it fails.
 *
 * @module
 */
import assert from "node:assert/strict";
import { VERSION } from "../../lib/cli/version.ts";
import { SCHEMA_VERSION } from "../../mod.ts";
import { waitUntil } from "../_helpers.ts";
import { buildTestBinary, IGNORE_BINARY_TEST, warnIfIgnored } from "./_binary.ts";

warnIfIgnored("binary_test");

const QUEUE = "thumbs";
const TASKS = 12;

/** The script `work --exec` runs: echoes the payload back, refuses payloads marked "fail". */
const WORKER_SCRIPT = `#!/bin/sh
payload=$(cat)
case "$payload" in
  *fail*) echo "refusing task $APALIS_TASK_ID on attempt $APALIS_ATTEMPT" >&2; exit 4 ;;
esac
echo "{\\"payload\\": $payload, \\"attempt\\": $APALIS_ATTEMPT, \\"queue\\": \\"$APALIS_QUEUE\\"}"
`;

interface Run {
  code: number;
  out: string;
  err: string;
}

Deno.test({
  name:
    "apalis binary runs init, push, work, ls, show, stats, retry, board and vacuum from a bare directory",
  ignore: IGNORE_BINARY_TEST,
  async fn(t) {
    const root = await Deno.makeTempDir({ prefix: "apalis_binary_" });
    const bin = `${root}/bin/apalis`;
    const cwd = `${root}/work`; // nothing from the repository beside the binary or in the cwd
    const tools = `${root}/tools`; // PATH: sh and cat only, no deno or bun
    await Deno.mkdir(cwd);
    await Deno.mkdir(tools);
    for (const tool of ["sh", "cat"]) {
      await Deno.symlink(await which(tool), `${tools}/${tool}`);
    }
    const env = { PATH: tools, NO_COLOR: "1", HOME: root };

    const apalis = async (...args: string[]): Promise<Run> => {
      const output = await new Deno.Command(bin, { args, cwd, env, clearEnv: true }).output();
      const decoder = new TextDecoder();
      return {
        code: output.code,
        out: decoder.decode(output.stdout),
        err: decoder.decode(output.stderr),
      };
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
    const work = (...args: string[]) => spawnBin("work", QUEUE, ...args);

    try {
      await t.step("bun build --compile builds the binary", async () => {
        await buildTestBinary(bin);
        // The Bun runtime is inside the executable.
        assert.match(
          await ok("version"),
          new RegExp(`^apalis ${VERSION.replaceAll(".", "\\.")} \\(bun `),
        );
        assert.equal(await ok("--version"), await ok("version"));
      });

      await t.step("init creates ./apalis.db in the current directory", async () => {
        const out = await ok("init");
        assert.equal(
          out,
          `Initialized ${await Deno.realPath(cwd)}/apalis.db (schema version ${SCHEMA_VERSION})\n`,
        );
      });

      const ids: string[] = [];
      let failing = "";
      await t.step("push enqueues an NDJSON file and a single task", async () => {
        const lines = Array.from({ length: TASKS }, (_, i) => JSON.stringify({ n: i + 1 }));
        await Deno.writeTextFile(`${cwd}/tasks.ndjson`, lines.join("\n") + "\n");
        ids.push(...(await ok("push", QUEUE, "--file", "tasks.ndjson")).trim().split("\n"));
        assert.equal(ids.length, TASKS);
        failing = (await ok("push", QUEUE, '{"n": 0, "fail": true}', "--max-attempts", "3"))
          .trim();
        assert.match(failing, /^[0-9A-Z]{26}$/);
        assert.deepEqual(await stats(), {
          pending: TASKS + 1,
          queued: 0,
          running: 0,
          done: 0,
          failed: 0,
          killed: 0,
          total: TASKS + 1,
        });
      });

      await t.step("work --exec drains the queue and stops with exit 0 on SIGTERM", async () => {
        await Deno.writeTextFile(`${cwd}/thumbnail.sh`, WORKER_SCRIPT, { mode: 0o755 });
        const child = work("--exec", "./thumbnail.sh", "--concurrency", "3", "--backoff", "50ms");
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
        assert.match(out, new RegExp(`: ${TASKS} done, 2 failed, 1 killed \\(`));
        assert.match(err, /Ctrl-C to stop\n/);
        assert.match(err, new RegExp(`task ${failing} attempt 3/3 killed: CommandError: `));
        assert.ok(!err.includes("\r"), "no status line when stderr is piped");
        const workers = JSON.parse(await ok("workers", "--json"));
        assert.equal(workers.length, 1);
        assert.equal(workers[0].alive, false);
      });

      await t.step("ls lists the tasks, --status killed finds the failing one", async () => {
        const table = await ok("ls", QUEUE, "--limit", "100");
        assert.match(table, /^ID +STATUS +ATTEMPTS/);
        assert.equal(table.trim().split("\n").length, TASKS + 2);
        const killed = JSON.parse(await ok("ls", QUEUE, "--status", "killed", "--json"));
        assert.deepEqual(killed.map((task: { id: string }) => task.id), [failing]);
      });

      await t.step("show prints a done task's result and a killed task's stderr", async () => {
        const done = JSON.parse(await ok("show", ids[4]!, "--json"));
        assert.equal(done.status, "done");
        assert.deepEqual(done.lastResult, { payload: { n: 5 }, attempt: 1, queue: QUEUE });
        const killed = await ok("show", failing);
        assert.match(killed, /status +killed/);
        assert.match(killed, /attempts +3\/3/);
        assert.ok(
          killed.includes(
            `Command exited with code 4: refusing task ${failing} on attempt 3`,
          ),
          killed,
        );
      });

      await t.step("stats --json counts every state", async () => {
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
        assert.deepEqual(all.total, all.queues[QUEUE]);
      });

      await t.step("retry makes the killed task pending again", async () => {
        assert.match(await ok("retry", failing), /pending/);
        const task = JSON.parse(await ok("show", failing, "--json"));
        assert.equal(task.status, "pending");
        assert.equal(task.attempts, 0);
      });

      await t.step(
        "board serves its pages and API from the binary, and stops on SIGTERM",
        async () => {
          const child = spawnBin("board", "--port", "0", "--token", "bin-token");
          const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
          try {
            let printed = "";
            while (!/http:\/\/127\.0\.0\.1:\d+\//.test(printed)) {
              const { value, done } = await reader.read();
              if (done) throw new Error(`apalis board exited before listening: ${printed}`);
              printed += value;
            }
            const url = printed.match(/http:\/\/127\.0\.0\.1:\d+\//)![0];
            const auth = { headers: { authorization: "Bearer bin-token" } };
            const overview = await (await fetch(`${url}api/overview`, auth)).json();
            assert.equal(overview.queues[0].name, QUEUE);
            const page = await fetch(`${url}queues/${QUEUE}?status=done`, auth);
            assert.match(await page.text(), /data-task="/);
            const script = await fetch(`${url}assets/board.js`);
            assert.match(await script.text(), /X-Board-Partial/, "the embedded assets are served");
          } finally {
            child.kill("SIGTERM");
            reader.releaseLock();
          }
          const status = await child.status;
          await child.stdout.cancel().catch(() => {});
          await child.stderr.cancel();
          assert.equal(status.code, 0);
        },
      );

      await t.step("vacuum deletes the finished tasks and keeps the pending one", async () => {
        assert.equal(await ok("vacuum"), `Deleted ${TASKS} finished tasks\n`);
        assert.deepEqual(await stats(), {
          pending: 1,
          queued: 0,
          running: 0,
          done: 0,
          failed: 0,
          killed: 0,
          total: 1,
        });
      });

      await t.step("errors: unknown id, bad usage and a missing database exit 2", async () => {
        const unknown = await apalis("show", "NOPE");
        assert.equal(unknown.code, 2);
        const usage = await apalis("work", QUEUE);
        assert.equal(usage.code, 2);
        assert.match(usage.err, /exactly one of --exec/);
        const missing = await apalis("--db", "absent.db", "stats");
        assert.equal(missing.code, 2);
        assert.match(missing.err, /no such file/);
      });
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

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
