/**
 * A handler that throws an error whose `name` is a BigInt crashed the worker process (an
 * unhandled rejection) and left its task `running`. In a child process, under Deno and Bun: the
 * process must finish cleanly and the task end `killed`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { openDatabase } from "../../mod.ts";
import { runCommand } from "../_command.ts";

const PROGRAM = new URL("./unreadable_error_process.ts", import.meta.url).pathname;

function hasBun(): boolean {
  try {
    return new Deno.Command("bun", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

const RUNTIMES: { name: string; command: string; args: string[]; ignore: boolean }[] = [
  { name: "Deno", command: Deno.execPath(), args: ["run", "-A", PROGRAM], ignore: false },
  { name: "Bun", command: "bun", args: ["run", PROGRAM], ignore: !hasBun() },
];

for (const runtime of RUNTIMES) {
  Deno.test({
    name:
      `Worker.run() under ${runtime.name} kills the task and the process exits 0 when the handler throws an error whose name is a BigInt${
        runtime.ignore ? " (ignored: bun is not on PATH)" : ""
      }`,
    ignore: runtime.ignore,
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "apalis_unreadable_" });
      try {
        const path = `${dir}/queue.db`;
        const run = await runCommand(runtime.command, { args: [...runtime.args, path] });
        assert.equal(run.code, 0, `the worker process crashed:\n${run.stderr}`);
        assert.deepEqual(JSON.parse(run.stdout.trim()), { status: "killed", error: "10n" });
        const db = openDatabase(path);
        try {
          const row = db.get<{ status: string; last_error: string }>(
            "SELECT status, last_error FROM apalis_tasks",
          );
          assert.equal(row?.status, "killed", "the task does not stay running");
          assert.deepEqual(JSON.parse(row!.last_error).message, "name is a BigInt");
        } finally {
          db.close();
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}
