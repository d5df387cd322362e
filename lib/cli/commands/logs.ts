import type { TaskLogLine } from "../../../mod.ts";
import { sleep } from "../../time/timers.ts";
import { type Command, openForCommand } from "../command.ts";
import { UsageError } from "../errors.ts";
import type { CliIo } from "../io.ts";
import {
  expectPositionals,
  formatTime,
  paint,
  parseDuration,
  parseInteger,
  parseOptions,
} from "../format.ts";

/** Lines read per query. */
const PAGE = 1000;

/** `apalis logs`: the lines a task's handler logged. */
export const logsCommand: Command = {
  name: "logs",
  summary: "print the lines a task logged (--follow waits for more)",
  help: `Usage: apalis logs ID [--follow] [--attempt N] [--json]

Prints the lines a task's handler logged with ctx.log (and, under 'apalis work --exec', the
lines its command wrote to stderr), oldest first, each with its time and attempt. Each attempt
keeps at most 1,000 lines and 64 KiB (longer lines are cut at 4 KiB; a marker line says when
lines were dropped). Lines are written with the worker's flushes, within about a second.

With --follow it keeps polling for new lines until the task has finished (done or killed),
then exits 0; Ctrl-C ends it earlier. An id no task has exits 2, as for show and kill; a
task deleted while followed exits 1.

Options:
  -f, --follow          wait for new lines until the task finishes
  --attempt N           only the lines of attempt N (1-based)
  --interval DURATION   how often --follow polls (default 1s)
  --json                one JSON object per line (also without --follow):
                        {"seq":N,"attempt":N,"at":EPOCH_MS,"line":"..."}

Example:
  apalis logs 01JH4Q8ZK3V7X2M9N5P6R8S0TB --follow
`,
  async run({ io, args, globals }) {
    const { values, positionals } = parseOptions("logs", args, {
      follow: { type: "boolean", short: "f" },
      attempt: { type: "string" },
      interval: { type: "string" },
    });
    const [id] = expectPositionals("logs", positionals, ["ID"]);
    const attempt = values.attempt === undefined
      ? undefined
      : parseInteger(values.attempt, "--attempt", 1);
    if (values.interval !== undefined && !values.follow) {
      throw new UsageError("option '--interval' only applies with --follow");
    }
    const interval = values.interval === undefined
      ? 1000
      : parseDuration(values.interval, "--interval");
    const database = await openForCommand(globals, "read");
    const { admin } = database;
    try {
      if (!await admin.fetchById(id!)) {
        throw new UsageError(`Cannot find task '${id}': no task has this id`);
      }
      const print = (line: TaskLogLine) =>
        io.stdout(
          globals.json ? JSON.stringify(line) + "\n" : render(io, line, attempt === undefined),
        );
      let after = 0;
      while (true) {
        // Whether the task had finished before this read: then no line comes after it.
        const task = values.follow ? await admin.fetchById(id!) : undefined;
        if (values.follow && !task) {
          throw new Error(`Cannot follow task '${id}': it was deleted`);
        }
        let lines: TaskLogLine[];
        do {
          lines = await admin.logs(id!, { after, limit: PAGE, ...(attempt ? { attempt } : {}) });
          for (const line of lines) print(line);
          after = lines.at(-1)?.seq ?? after;
          await io.flush();
        } while (lines.length === PAGE);
        if (!values.follow || task!.status === "done" || task!.status === "killed") return 0;
        if (io.signal.aborted) return 0;
        await sleep(interval, io.signal);
        if (io.signal.aborted) return 0;
      }
    } finally {
      await database.close();
    }
  },
};

function render(io: CliIo, line: TaskLogLine, withAttempt: boolean): string {
  const head = paint(io, "dim", formatTime(line.at));
  const attempt = withAttempt ? ` ${paint(io, "dim", `#${line.attempt}`)}` : "";
  return `${head}${attempt} ${line.line}\n`;
}
