import type { WorkerInfo } from "../../../mod.ts";
import { type Command, openForCommand } from "../command.ts";
import type { CliIo } from "../io.ts";
import {
  expectPositionals,
  formatAgo,
  formatTime,
  json,
  paint,
  parseOptions,
  table,
} from "../format.ts";

/** `apalis workers`: registered workers, their last heartbeat and whether they are alive. */
export const workersCommand: Command = {
  name: "workers",
  summary: "list workers: host, pid, last heartbeat, alive",
  help: `Usage: apalis workers [QUEUE]

Lists the registered workers (of QUEUE only, when given), most recently seen first: name,
queue, host, pid, when it started, its last heartbeat, and whether it is alive (not stopped,
heart-beating, and, on SQLite, its process exists when it runs on this host; on PostgreSQL,
whose workers run on many hosts, heartbeats alone decide).

Options:
  --json   print the workers as a JSON array

Example:
  apalis workers email
`,
  async run({ io, args, globals }) {
    const { positionals } = parseOptions("workers", args, {});
    const [queue] = expectPositionals("workers", positionals, ["QUEUE"], 0);
    const database = await openForCommand(globals, "read");
    const storage = database.admin;
    try {
      const workers = await storage.listWorkers(queue);
      if (globals.json) io.stdout(json(workers));
      else if (workers.length === 0) {
        io.stdout(`No workers${queue === undefined ? "" : ` in queue '${queue}'`}.\n`);
      } else io.stdout(render(io, workers, storage.clock.now()));
      return 0;
    } finally {
      await database.close();
    }
  },
};

function render(io: CliIo, workers: WorkerInfo[], now: number): string {
  const headers = ["NAME", "QUEUE", "HOST", "PID", "STARTED", "LAST HEARTBEAT", "ALIVE"];
  const rows = workers.map((worker) => [
    worker.name,
    worker.queue,
    worker.host,
    String(worker.pid),
    formatTime(worker.startedAt),
    formatAgo(worker.lastSeen, now),
    worker.alive ? paint(io, "green", "yes") : paint(io, "red", "no"),
  ]);
  return table(headers, rows, { right: ["PID"] });
}
