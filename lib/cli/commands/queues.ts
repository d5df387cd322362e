import { type QueueInfo, TASK_STATUSES } from "../../../mod.ts";
import { type Command, openForCommand } from "../command.ts";
import type { CliIo } from "../io.ts";
import { expectPositionals, formatDuration, json, paint, parseOptions, table } from "../format.ts";
import { formatLimits } from "../../format/limits.ts";
import { countCells } from "./stats.ts";

/** `apalis queues`: every queue with its counts, its oldest due task and its live workers. */
export const queuesCommand: Command = {
  name: "queues",
  summary: "list queues: counts per state, oldest due task, alive workers",
  help: `Usage: apalis queues

Lists every queue that has tasks, workers or settings: its counts per state, how long its oldest
due task has been waiting (OLDEST DUE), how many of its workers are alive, whether it is paused
(see 'apalis pause') and its limits (see 'apalis limits').

Options:
  --json   print the queues as a JSON array of
           {name, counts, oldestDueAt, aliveWorkers, paused, limits}

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
  headers.push("OLDEST DUE", "WORKERS", "STATE", "LIMITS");
  const rows = queues.map(({ name, counts, oldestDueAt, aliveWorkers, paused, limits }) => [
    name,
    ...countCells(io, counts),
    oldestDueAt === null ? "-" : formatDuration(Math.max(0, now - oldestDueAt)),
    String(aliveWorkers),
    paused ? paint(io, "yellow", "paused") : "active",
    formatLimits(limits),
  ]);
  return table(headers, rows, { right: headers.slice(1, -2) });
}
