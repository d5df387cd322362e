import {
  CATCH_UP_MODES,
  type CatchUp,
  InvalidScheduleError,
  type ScheduleInfo,
  type ScheduleOptions,
} from "../../../mod.ts";
import { type Command, type CommandContext, openForCommand } from "../command.ts";
import { UsageError } from "../errors.ts";
import type { CliIo } from "../io.ts";
import {
  expectPositionals,
  formatTime,
  json,
  paint,
  parseInteger,
  parseOptions,
  table,
} from "../format.ts";

const HELP = `Usage: apalis cron add NAME "EXPR" QUEUE [JSON] [options]
       apalis cron ls [QUEUE]
       apalis cron rm NAME

Persisted cron schedules. The running workers of a schedule's queue enqueue one task per tick
(whatever their number, processes or hosts), with the JSON payload (default null). The task's
id is cron:NAME:<tick ms>, its meta has {"cron": {"schedule": NAME, "tick": <tick ms>}}.

  add   creates the schedule NAME, or replaces it (same queue). EXPR has 5 fields (minute hour
        day-of-month month day-of-week), or 6 with seconds first; also L, W, #, @daily...
        Replacing it with another EXPR or --tz moves its next tick to the first after now.
        A bad EXPR or zone exits 2 and writes nothing; a NAME another queue has exits 1.
  ls    lists schedules (of QUEUE only, when given): next tick, last tick and last task.
  rm    deletes the schedule NAME; tasks it enqueued stay. Exits 1 when there is none.

Options of add:
  --tz ZONE                 the IANA time zone EXPR is read in (default UTC), e.g. Europe/Paris
  --catch-up none|latest|all
                            ticks missed while no worker ran: skip them, enqueue the last one
                            (default), or enqueue each (at most the 1,000 most recent)
  --priority N              each task's priority (default 0)
  --max-attempts N          each task's attempts (default 5)
  --paused                  create it paused (add it again without --paused to resume)
  --json                    print the schedule (add, ls) as JSON

Examples:
  apalis cron add daily-digest "0 8 * * *" email '{"kind":"digest"}' --tz Europe/Paris
  apalis cron add heartbeat "*/10 * * * * *" pings --catch-up none
  apalis cron ls --json
  apalis cron rm daily-digest
`;

/** `apalis cron`: add, list and remove cron schedules. */
export const cronCommand: Command = {
  name: "cron",
  summary: "persisted cron schedules: add, ls, rm",
  help: HELP,
  async run(ctx) {
    const [action, ...args] = ctx.args;
    const rest = { ...ctx, args };
    if (action === "add") return await add(rest);
    if (action === "ls") return await list(rest);
    if (action === "rm") return await remove(rest);
    throw new UsageError(
      action === undefined
        ? "missing the action: add, ls or rm (see 'apalis cron --help')"
        : `unknown action '${action}': add, ls or rm (see 'apalis cron --help')`,
    );
  },
};

async function add({ io, args, globals }: CommandContext): Promise<number> {
  const { values, positionals } = parseOptions("cron", args, {
    tz: { type: "string" },
    "catch-up": { type: "string" },
    priority: { type: "string" },
    "max-attempts": { type: "string" },
    paused: { type: "boolean" },
  });
  const [name, expression, queue, payload] = expectPositionals(
    "cron",
    positionals,
    ["NAME", "EXPR", "QUEUE", "JSON"],
    3,
  ) as [string, string, string, string | undefined];
  if (!queue) throw new UsageError("the queue name must not be empty");
  if (queue.includes("\0")) throw new UsageError("the queue name must not contain a NUL character");
  let args_: unknown = null;
  if (payload !== undefined) {
    try {
      args_ = JSON.parse(payload);
    } catch (error) {
      throw new UsageError(`the JSON payload is not valid JSON: ${(error as Error).message}`);
    }
  }
  const options: ScheduleOptions = {};
  if (values.tz !== undefined) options.timezone = values.tz;
  const catchUp = values["catch-up"];
  if (catchUp !== undefined) {
    if (!(CATCH_UP_MODES as readonly string[]).includes(catchUp)) {
      throw new UsageError(
        `option '--catch-up' must be one of ${CATCH_UP_MODES.join(", ")}: got '${catchUp}'`,
      );
    }
    options.catchUp = catchUp as CatchUp;
  }
  if (values.priority !== undefined) options.priority = parseInteger(values.priority, "--priority");
  if (values["max-attempts"] !== undefined) {
    options.maxAttempts = parseInteger(values["max-attempts"], "--max-attempts", 1);
  }
  if (values.paused) options.paused = true;
  const database = await openForCommand(globals, "create");
  try {
    const storage = database.storage(queue);
    try {
      await storage.schedule(name, expression, args_, options);
    } catch (error) {
      throw error instanceof InvalidScheduleError ? new UsageError(error.message) : error;
    }
    const info = (await storage.listSchedules()).find((schedule) => schedule.name === name)!;
    if (globals.json) io.stdout(json(info));
    else {
      const next = info.nextTick === null ? "paused" : `next tick ${formatTime(info.nextTick)}`;
      io.stdout(
        `Scheduled '${name}' on queue '${queue}': "${info.cron}" (${info.timezone}), ${next}\n`,
      );
    }
    return 0;
  } finally {
    await database.close();
  }
}

async function list({ io, args, globals }: CommandContext): Promise<number> {
  const { positionals } = parseOptions("cron", args, {});
  const [queue] = expectPositionals("cron", positionals, ["QUEUE"], 0);
  const database = await openForCommand(globals, "read");
  try {
    const schedules = await database.admin.listSchedules(queue === undefined ? {} : { queue });
    if (globals.json) io.stdout(json(schedules));
    else if (schedules.length === 0) {
      io.stdout(`No schedules${queue === undefined ? "" : ` in queue '${queue}'`}.\n`);
    } else io.stdout(render(io, schedules));
    return 0;
  } finally {
    await database.close();
  }
}

async function remove({ io, args, globals }: CommandContext): Promise<number> {
  const { positionals } = parseOptions("cron", args, {});
  const [name] = expectPositionals("cron", positionals, ["NAME"]) as [string];
  const database = await openForCommand(globals, "write");
  try {
    // Names are unique in a database: find the queue that has it, then delete it there (a
    // delete fenced by that queue: a schedule moved meanwhile is not removed).
    const found = (await database.admin.listSchedules()).find((schedule) => schedule.name === name);
    if (!found || !(await database.storage(found.queue).unschedule(name))) {
      io.stderr(`apalis cron: no schedule is named '${name}'\n`);
      return 1;
    }
    if (globals.json) io.stdout(json({ removed: name, queue: found.queue }));
    else io.stdout(`Removed schedule '${name}' of queue '${found.queue}'\n`);
    return 0;
  } finally {
    await database.close();
  }
}

function render(io: CliIo, schedules: ScheduleInfo[]): string {
  const headers = ["NAME", "QUEUE", "CRON", "ZONE", "NEXT TICK", "LAST TICK", "LAST TASK"];
  const rows = schedules.map((schedule) => [
    schedule.name,
    schedule.queue,
    schedule.cron,
    schedule.timezone,
    schedule.paused ? paint(io, "yellow", "paused") : formatTime(schedule.nextTick),
    formatTime(schedule.lastTick),
    schedule.lastTaskId ?? "-",
  ]);
  return table(headers, rows);
}
