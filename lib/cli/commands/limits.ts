import type { QueueLimitsChange } from "../../../mod.ts";
import { type Command, openForCommand } from "../command.ts";
import { UsageError } from "../errors.ts";
import { expectPositionals, json, parseDuration, parseInteger, parseOptions } from "../format.ts";
import { assertQueue, describeFlow } from "./pause.ts";

/** `apalis limits`: shows or changes a queue's rate, concurrency and group concurrency limits. */
export const limitsCommand: Command = {
  name: "limits",
  summary: "show or set a queue's limits: rate, concurrency, group concurrency",
  help: `Usage: apalis limits QUEUE [--rate N/DURATION] [--concurrency N] [--group-concurrency N]
                     [--clear]

Without options, shows the queue's limits. With them, changes the limits given (the others stay)
and shows the result. The database enforces them for every worker of the queue, in any process
or on any host; running workers apply a change within a second.

Options:
  --rate N/DURATION        at most N task starts in any DURATION (100/1s, 6000/1m, 10/s);
                           'none' removes the rate limit
  --concurrency N          at most N tasks of the queue running at once, all workers together
                           (each worker's own --concurrency still applies); 'none' removes it
  --group-concurrency N    at most N running at once per group (tasks pushed with a group);
                           'none' removes it
  --clear                  remove every limit first (the options given then apply)
  --json                   print {"queue", "paused", "limits"}

Examples:
  apalis limits email
  apalis limits email --rate 100/1s --concurrency 5
  apalis limits invoices --group-concurrency 1
  apalis limits email --rate none
  apalis limits email --clear
`,
  async run({ io, args, globals }) {
    const { values, positionals } = parseOptions("limits", args, {
      rate: { type: "string" },
      concurrency: { type: "string" },
      "group-concurrency": { type: "string" },
      clear: { type: "boolean" },
    });
    const [queue] = expectPositionals("limits", positionals, ["QUEUE"]);
    assertQueue(queue!);
    const change: QueueLimitsChange = values.clear
      ? { rate: null, concurrency: null, groupConcurrency: null }
      : {};
    if (values.rate !== undefined) change.rate = parseRate(values.rate);
    if (values.concurrency !== undefined) {
      change.concurrency = countOrNone(values.concurrency, "--concurrency");
    }
    if (values["group-concurrency"] !== undefined) {
      change.groupConcurrency = countOrNone(values["group-concurrency"], "--group-concurrency");
    }
    const changing = Object.keys(change).length > 0;
    const database = await openForCommand(globals, changing ? "create" : "read");
    try {
      const admin = database.admin;
      const flow = changing
        ? await admin.setQueueLimits(queue!, change)
        : await admin.queueFlow(queue!);
      io.stdout(globals.json ? json({ queue, ...flow }) : describeFlow(io, queue!, flow));
      return 0;
    } finally {
      await database.close();
    }
  },
};

/** `N/DURATION` (`100/1s`, `10/s`), or `none`. */
function parseRate(text: string): { limit: number; perMs: number } | null {
  if (text.trim() === "none") return null;
  const match = /^\s*([^/]+)\/(.+)$/.exec(text);
  if (!match) {
    throw new UsageError(
      `option '--rate' must be N/DURATION such as 100/1s or 6000/1m, or none: got '${text}'`,
    );
  }
  const limit = parseInteger(match[1]!, "--rate", 1);
  const duration = match[2]!.trim();
  // A bare unit is one of it: 10/s is 10/1s.
  const perMs = parseDuration(/^[a-z]+$/.test(duration) ? `1${duration}` : duration, "--rate");
  if (perMs < 1) {
    throw new UsageError(`option '--rate' needs a duration of at least 1ms: got '${text}'`);
  }
  return { limit, perMs };
}

function countOrNone(text: string, option: string): number | null {
  return text.trim() === "none" ? null : parseInteger(text, option, 1);
}
