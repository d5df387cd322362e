import type { QueueInfo } from "../../storage/records.ts";
import { TASK_STATUSES } from "../../backend/types.ts";
import { type Command, openForCommand } from "../command.ts";
import type { CliIo } from "../io.ts";
import { expectPositionals, formatDuration, json, parseOptions, table } from "../format.ts";
import { countCells } from "./stats.ts";

/** `apalis queues`: every queue with its counts, its oldest due task and its live workers. */
export const queuesCommand: Command = {
  name: "queues",
  summary: "list queues: counts per state, oldest due task, alive workers",
  help: `Usage: apalis queues

Lists every queue that has tasks or workers: its counts per state, how long its oldest due
task has been waiting (OLDEST DUE), and how many of its workers are alive.

Options:
  --json   print the queues as a JSON array of {name, counts, oldestDueAt, aliveWorkers}

Example:
  apalis queues
`,
  async run({ io, args, globals }) {
    const { positionals } = parseOptions("queues", args, {});
    expectPositionals("queues", positionals, []);
    const database = await openForCommand(globals, "read");
    const storage = database.admin;
    try {
      const queues = await storage.listQueues();
      if (globals.json) io.stdout(json(queues));
      else if (queues.length === 0) io.stdout("No queues yet.\n");
      else io.stdout(render(io, queues, storage.clock.now()));
      return 0;
    } finally {
      await database.close();
    }
  },
};

function render(io: CliIo, queues: QueueInfo[], now: number): string {
  const headers = ["QUEUE", ...TASK_STATUSES.map((s) => s.toUpperCase()), "TOTAL"];
  headers.push("OLDEST DUE", "WORKERS");
  const rows = queues.map(({ name, counts, oldestDueAt, aliveWorkers }) => [
    name,
    ...countCells(io, counts),
    oldestDueAt === null ? "-" : formatDuration(Math.max(0, now - oldestDueAt)),
    String(aliveWorkers),
  ]);
  return table(headers, rows, { right: headers.slice(1) });
}
