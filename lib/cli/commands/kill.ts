import { TaskNotFoundError } from "../../../mod.ts";
import { type Command, openForCommand } from "../command.ts";
import { UsageError } from "../errors.ts";
import { expectPositionals, json, paint, parseOptions } from "../format.ts";

/** `apalis kill`: stops a task that has not finished from ever running again. */
export const killCommand: Command = {
  name: "kill",
  summary: "kill a task that has not finished",
  help: `Usage: apalis kill ID [--reason TEXT]

Kills a task that is pending, queued, running or failed: it will not run again unless retried.
A task that already finished (done or killed) is refused (exit 1); an unknown id is bad input
(exit 2).

A running task is stopped wherever it runs: its handler's ctx.signal aborts with a KilledError
naming the task and the reason (on PostgreSQL within milliseconds, on SQLite within about half
a second: each busy worker checks its running tasks every 500 ms). The worker frees the slot at
once and discards the attempt's outcome; \`apalis work --exec\` ends the command's process group
(SIGTERM, SIGKILL 2s later), \`--http\` aborts the request.

Options:
  --reason TEXT   stored as the task's error message (default "Killed by request")
  --json          print the task record

Example:
  apalis kill 01JH4Q8ZK3V7X2M9N5P6R8S0TB --reason "customer cancelled"
`,
  async run({ io, args, globals }) {
    const { values, positionals } = parseOptions("kill", args, { reason: { type: "string" } });
    const [id] = expectPositionals("kill", positionals, ["ID"]);
    const database = await openForCommand(globals, "write");
    const storage = database.admin;
    try {
      const task = await storage.kill(id!, values.reason).catch((error) => {
        throw error instanceof TaskNotFoundError ? new UsageError(error.message) : error;
      });
      io.stdout(globals.json ? json(task) : `Task ${task.id} is ${paint(io, "red", "killed")}\n`);
      return 0;
    } finally {
      await database.close();
    }
  },
};
