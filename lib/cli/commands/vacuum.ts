import { type Command, openForCommand } from "../command.ts";
import { expectPositionals, json, parseDuration, parseOptions, plural } from "../format.ts";

/** `apalis vacuum`: deletes finished tasks. */
export const vacuumCommand: Command = {
  name: "vacuum",
  summary: "delete finished (done and killed) tasks",
  help: `Usage: apalis vacuum [--older-than DURATION]

Deletes finished tasks (done and killed) of every queue, or only those that finished at least
DURATION ago. Waiting, running and failed tasks are never deleted. The tasks of a workflow run
go only with the whole run (its tasks and joins), once it has finished and so have all of them.
Prints how many went.
It deletes 5,000 tasks per transaction, so workers on the same database keep going meanwhile.

Options:
  --older-than DURATION   only tasks finished at least this long ago: 30m, 12h, 7d, 2w
  --json                  print {"deleted": N}

Example:
  apalis vacuum --older-than 7d
`,
  async run({ io, args, globals }) {
    const { values, positionals } = parseOptions("vacuum", args, {
      "older-than": { type: "string" },
    });
    expectPositionals("vacuum", positionals, []);
    const olderThanMs = values["older-than"] === undefined
      ? 0
      : parseDuration(values["older-than"], "--older-than");
    const database = await openForCommand(globals, "write");
    const storage = database.admin;
    try {
      const deleted = await storage.vacuum({ olderThanMs });
      io.stdout(
        globals.json ? json({ deleted }) : `Deleted ${plural(deleted, "finished task")}\n`,
      );
      return 0;
    } finally {
      await database.close();
    }
  },
};
