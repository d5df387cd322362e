import { TaskNotFoundError } from "../../../mod.ts";
import { type Command, openForCommand } from "../command.ts";
import { UsageError } from "../errors.ts";
import { expectPositionals, json, paint, parseOptions, plural, statusStyle } from "../format.ts";

const BULK_STATUSES = ["killed", "failed"] as const;

/** `apalis retry`: runs a task again, or every killed or failed task of a queue. */
export const retryCommand: Command = {
  name: "retry",
  summary: "run a task again, or every killed/failed task of a queue",
  help: `Usage: apalis retry ID
       apalis retry --queue Q --status killed|failed

Runs a task again from a fresh attempt budget (attempts reset, due now), or every task of queue
Q in the given state. A task that is queued or running is refused (exit 1); an unknown id is bad
input (exit 2).

Options:
  --queue Q        retry in bulk in this queue (with --status)
  --status S       which tasks to retry in bulk: killed or failed
  --json           print the task record, or {"retried": N} in bulk

Examples:
  apalis retry 01JH4Q8ZK3V7X2M9N5P6R8S0TB
  apalis retry --queue email --status killed
`,
  async run({ io, args, globals }) {
    const { values, positionals } = parseOptions("retry", args, {
      queue: { type: "string" },
      status: { type: "string" },
    });
    const bulk = values.queue !== undefined || values.status !== undefined;
    const [id] = expectPositionals("retry", positionals, ["ID"], bulk ? 0 : 1);
    if (bulk && id !== undefined) throw new UsageError("give either an ID or --queue and --status");
    if (bulk && !values.queue) throw new UsageError("option '--status' needs --queue Q");
    const status = values.status;
    if (bulk && !(BULK_STATUSES as readonly (string | undefined)[]).includes(status)) {
      throw new UsageError(
        `option '--status' must be killed or failed: got ${
          status === undefined ? "nothing" : `'${status}'`
        }`,
      );
    }
    const database = await openForCommand(globals, "write");
    const storage = database.admin;
    try {
      if (bulk) {
        const retried = await storage.retryAll({
          queue: values.queue!,
          status: status as "killed",
        });
        io.stdout(
          globals.json
            ? json({ retried })
            : `Retried ${plural(retried, `${status} task`)} in queue '${values.queue}'\n`,
        );
        return 0;
      }
      const task = await storage.retry(id!).catch((error) => {
        throw error instanceof TaskNotFoundError ? new UsageError(error.message) : error;
      });
      io.stdout(
        globals.json
          ? json(task)
          : `Task ${task.id} is ${paint(io, statusStyle(task.status), task.status)} again\n`,
      );
      return 0;
    } finally {
      await database.close();
    }
  },
};
