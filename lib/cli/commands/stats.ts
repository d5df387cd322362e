import { type Admin, type StatusCounts, TASK_STATUSES } from "../../../mod.ts";
import { sleep } from "../../time/timers.ts";
import { type Command, openForCommand } from "../command.ts";
import { UsageError } from "../errors.ts";
import type { CliIo } from "../io.ts";
import {
  expectPositionals,
  formatDuration,
  json,
  paint,
  parseDuration,
  parseOptions,
  statusStyle,
  table,
} from "../format.ts";

/** Counts per queue, and their sum. */
interface Stats {
  queues: Record<string, StatusCounts>;
  total: StatusCounts;
}

/** `apalis stats`: counts of tasks per state and queue, once or refreshed. */
export const statsCommand: Command = {
  name: "stats",
  summary: "count tasks per state and queue (--watch refreshes)",
  help: `Usage: apalis stats [QUEUE] [options]

Counts the tasks of QUEUE (of every queue when absent) in each state: one row per queue, and
a TOTAL row when there are several.

Options:
  -w, --watch           redraw every interval until Ctrl-C (a new table per interval when
                        the output is not a terminal)
  --interval DURATION   how often --watch refreshes (default 2s)
  --json                print {"queues": {NAME: counts}, "total": counts}; with --watch, one
                        such object per line per refresh

Examples:
  apalis stats
  apalis stats email --watch --interval 1s
`,
  async run({ io, args, globals }) {
    const { values, positionals } = parseOptions("stats", args, {
      watch: { type: "boolean", short: "w" },
      interval: { type: "string" },
    });
    const [queue] = expectPositionals("stats", positionals, ["QUEUE"], 0);
    if (values.interval !== undefined && !values.watch) {
      throw new UsageError("option '--interval' only applies with --watch");
    }
    const interval = parseDuration(values.interval ?? "2s", "--interval");
    if (interval < 1) throw new UsageError("option '--interval' must be at least 1ms");
    const database = await openForCommand(globals, "read");
    const storage = database.admin;
    try {
      if (!values.watch) {
        const stats = await collect(storage, queue);
        io.stdout(globals.json ? json(stats) : render(io, stats));
        return 0;
      }
      while (!io.signal.aborted) {
        const stats = await collect(storage, queue);
        if (globals.json) io.stdout(JSON.stringify(stats) + "\n");
        else {
          const head = paint(
            io,
            "dim",
            `Every ${formatDuration(interval)}: ${new Date().toISOString()} (Ctrl-C to stop)`,
          );
          io.stdout(`${io.isTerminal ? "\x1b[H\x1b[2J" : ""}${head}\n${render(io, stats)}\n`);
        }
        await sleep(interval, io.signal);
      }
      return 0;
    } finally {
      await database.close();
    }
  },
};

async function collect(storage: Admin, queue: string | undefined): Promise<Stats> {
  const rows = queue !== undefined
    ? [{ name: queue, counts: await storage.stats(queue) }]
    : await storage.listQueues();
  const total = emptyCounts();
  for (const { counts } of rows) {
    for (const key of [...TASK_STATUSES, "total"] as const) total[key] += counts[key];
  }
  return { queues: Object.fromEntries(rows.map((row) => [row.name, row.counts])), total };
}

function render(io: CliIo, stats: Stats): string {
  const entries = Object.entries(stats.queues);
  if (entries.length === 0) return "No queues yet.\n";
  if (entries.length > 1) entries.push(["TOTAL", stats.total]);
  const headers = ["QUEUE", ...TASK_STATUSES.map((s) => s.toUpperCase()), "TOTAL"];
  const rows = entries.map(([name, counts]) => [name, ...countCells(io, counts)]);
  return table(headers, rows, { right: headers.slice(1) });
}

/** The counts per state then the total, as table cells; failed and killed coloured when > 0. */
export function countCells(io: CliIo, counts: StatusCounts): string[] {
  return [
    ...TASK_STATUSES.map((status) => {
      const n = String(counts[status]);
      return counts[status] > 0 && (status === "failed" || status === "killed")
        ? paint(io, statusStyle(status), n)
        : n;
    }),
    String(counts.total),
  ];
}

/** Zero counts, to add queues' counts to. */
function emptyCounts(): StatusCounts {
  return { pending: 0, queued: 0, running: 0, done: 0, failed: 0, killed: 0, total: 0 };
}
