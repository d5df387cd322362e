import { Config, type QueueFlow } from "../../../mod.ts";
import { formatLimits } from "../../format/limits.ts";
import { type Command, openForCommand } from "../command.ts";
import { UsageError } from "../errors.ts";
import type { CliIo } from "../io.ts";
import { expectPositionals, json, paint, parseOptions } from "../format.ts";

/** `apalis pause`: no worker anywhere starts a task of the queue until `apalis resume`. */
export const pauseCommand: Command = {
  name: "pause",
  summary: "pause a queue: no worker starts its tasks until resumed",
  help: `Usage: apalis pause QUEUE

Pauses a queue, in the database: no worker, in any process or on any host, starts a task of it
until 'apalis resume QUEUE'. Tasks already running finish; pushes still succeed. Workers honour
it within a second. Pausing a paused queue changes nothing.

Options:
  --json   print the queue's flow control: {"queue", "paused", "limits"}

Example:
  apalis pause email
`,
  run: (ctx) => setPaused(ctx, "pause", true),
};

/** `apalis resume`: workers start the queue's tasks again. */
export const resumeCommand: Command = {
  name: "resume",
  summary: "resume a paused queue",
  help: `Usage: apalis resume QUEUE

Resumes a paused queue: idle workers wake and start its tasks at once (within a second).
Resuming a queue that is not paused changes nothing.

Options:
  --json   print the queue's flow control: {"queue", "paused", "limits"}

Example:
  apalis resume email
`,
  run: (ctx) => setPaused(ctx, "resume", false),
};

async function setPaused(
  { io, args, globals }: Parameters<Command["run"]>[0],
  name: "pause" | "resume",
  paused: boolean,
): Promise<number> {
  const { positionals } = parseOptions(name, args, {});
  const [queue] = expectPositionals(name, positionals, ["QUEUE"]);
  assertQueue(queue!);
  const database = await openForCommand(globals, "create");
  try {
    const admin = database.admin;
    const flow = paused ? await admin.pauseQueue(queue!) : await admin.resumeQueue(queue!);
    io.stdout(globals.json ? json({ queue, ...flow }) : describeFlow(io, queue!, flow));
    return 0;
  } finally {
    await database.close();
  }
}

/** Refuses a queue name the library would refuse (exit 2), with the library's words. */
export function assertQueue(queue: string): void {
  const problem = Config.queueNameProblem(queue);
  if (problem !== undefined) throw new UsageError(`argument QUEUE ${problem}`);
}

/** One line: the queue, paused or not, and its limits. */
export function describeFlow(io: CliIo, queue: string, flow: QueueFlow): string {
  const state = flow.paused ? paint(io, "yellow", "paused") : paint(io, "green", "active");
  return `Queue ${queue} is ${state}; limits: ${formatLimits(flow.limits)}\n`;
}
