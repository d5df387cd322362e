import { formatMetrics } from "../../../board.ts";
import { type Command, openForCommand } from "../command.ts";
import { expectPositionals, json, parseOptions } from "../format.ts";

/** `apalis metrics`: every queue's metrics in the Prometheus text format, once. */
export const metricsCommand: Command = {
  name: "metrics",
  summary: "print every queue's metrics in the Prometheus text format",
  help: `Usage: apalis metrics [options]

Prints every queue's metrics in the Prometheus text format (version 0.0.4), as the board
serves them at /metrics: tasks per state, outcome counters (succeeded, failed attempts,
killed; kept through vacuum), run and wait time histograms of the 1000 newest done tasks,
workers alive, the oldest due task's age and whether the queue is paused. Reads only. For
node_exporter's textfile collector, write to a temp file and rename it into place.

Options:
  --json   print the same as JSON (Admin.metrics(): times in ms)

Examples:
  apalis metrics
  apalis metrics > /var/lib/node_exporter/apalis.prom.tmp &&
    mv /var/lib/node_exporter/apalis.prom.tmp /var/lib/node_exporter/apalis.prom
`,
  async run({ io, args, globals }) {
    const { positionals } = parseOptions("metrics", args, {});
    expectPositionals("metrics", positionals, [], 0);
    const database = await openForCommand(globals, "read");
    try {
      const snapshot = await database.admin.metrics();
      io.stdout(globals.json ? json(snapshot) : formatMetrics(snapshot));
      return 0;
    } finally {
      await database.close();
    }
  },
};
