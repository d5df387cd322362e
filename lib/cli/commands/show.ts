import type { TaskRecord } from "../../../mod.ts";
import { type Command, openForCommand } from "../command.ts";
import { UsageError } from "../errors.ts";
import type { CliIo } from "../io.ts";
import {
  expectPositionals,
  formatTime,
  json,
  paint,
  parseOptions,
  statusStyle,
} from "../format.ts";

/** `apalis show`: everything about one task. */
export const showCommand: Command = {
  name: "show",
  summary: "show one task: payload, result, error, attempts, timestamps",
  help: `Usage: apalis show ID

Shows one task: queue, state, attempts, priority, timestamps (created, run at, locked at,
done at), the worker that ran it last, its workflow run and unique key if any, the last progress
its handler reported (ctx.progress, with its attempt), its payload, its result, its last error
with the stack, and its metadata. Its log lines: 'apalis logs ID'. An unknown id is bad input:
it exits 2.

Options:
  --json   print the task record as JSON

Example:
  apalis show 01JH4Q8ZK3V7X2M9N5P6R8S0TB
`,
  async run({ io, args, globals }) {
    const { positionals } = parseOptions("show", args, {});
    const [id] = expectPositionals("show", positionals, ["ID"]);
    const database = await openForCommand(globals, "read");
    const storage = database.admin;
    try {
      const task = await storage.fetchById(id!);
      if (!task) throw new UsageError(`Cannot find task '${id}': no task has this id`);
      io.stdout(globals.json ? json(task) : render(io, task));
      return 0;
    } finally {
      await database.close();
    }
  },
};

function render(io: CliIo, task: TaskRecord): string {
  const fields: [string, string][] = [
    ["queue", task.queue],
    ["status", paint(io, statusStyle(task.status), task.status)],
    ["attempts", `${task.attempts}/${task.maxAttempts}`],
    ["priority", String(task.priority)],
    ["created", formatTime(task.createdAt)],
    ["run at", formatTime(task.runAt)],
    ["locked at", formatTime(task.lockAt)],
    ["done at", formatTime(task.doneAt)],
    ["worker", task.lockBy ?? "-"],
  ];
  if (task.runId !== null) fields.push(["run", task.runId]);
  if (task.uniqueKey !== undefined) fields.push(["unique", task.uniqueKey]);
  if (task.progress !== undefined) fields.push(["progress", describeProgress(task)]);
  let text = `${paint(io, "bold", `Task ${task.id}`)}\n`;
  for (const [name, value] of fields) text += `  ${name.padEnd(10)} ${value}\n`;
  const section = (title: string, body: string) => {
    text += `\n${paint(io, "bold", title)}\n${indent(body)}\n`;
  };
  if (task.decodeError) section("Decode error:", task.decodeError);
  section("Payload:", pretty(task.args));
  if (task.lastResult !== undefined) section("Result:", pretty(task.lastResult));
  if (task.lastError) {
    section("Error:", describeError(task.lastError));
  }
  if (Object.keys(task.meta).length > 0) section("Meta:", pretty(task.meta));
  return text;
}

/** `42%` or the object's JSON, with the attempt that reported it and when. */
function describeProgress(task: TaskRecord): string {
  const { value, attempt, at } = task.progress!;
  const shown = typeof value === "number" ? `${value}%` : JSON.stringify(value);
  return `${shown} (attempt ${attempt}, ${formatTime(at)})`;
}

/** `name: message`, then the stack without its own copy of the message. */
function describeError({ name, message, stack }: NonNullable<TaskRecord["lastError"]>): string {
  const head = `${name}: ${message}`;
  if (!stack) return head;
  const at = message ? stack.indexOf(message) : -1;
  const frames = at === -1 ? stack : stack.slice(at + message.length).replace(/^\n/, "");
  return frames.trim() === "" ? head : `${head}\n${frames.trimEnd()}`;
}

function pretty(value: unknown): string {
  return value === undefined ? "-" : JSON.stringify(value, null, 2);
}

function indent(text: string): string {
  return text.split("\n").map((line) => `  ${line}`).join("\n");
}
