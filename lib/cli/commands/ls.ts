import { TASK_STATUSES, type TaskRecord, type TaskStatus } from "../../../mod.ts";
import { type Command, openForCommand } from "../command.ts";
import { UsageError } from "../errors.ts";
import type { CliIo } from "../io.ts";
import {
  expectPositionals,
  formatTime,
  json,
  paint,
  parseInteger,
  parseOptions,
  statusStyle,
  table,
  truncate,
} from "../format.ts";

/** `apalis ls`: lists a queue's tasks, newest first, one page at a time. */
export const lsCommand: Command = {
  name: "ls",
  summary: "list a queue's tasks, newest first",
  help: `Usage: apalis ls [QUEUE] [options]

Lists the tasks of QUEUE (of every queue when absent), newest first: id, state, attempts,
priority, when it may run and its last error.

Options:
  --status S   only tasks in state S: ${TASK_STATUSES.join(", ")}
  --limit N    tasks per page (default 20)
  --page N     which page, from 1 (default 1)
  --json       print the task records as a JSON array

When more tasks match than the page shows, a note on stderr says how many and how to see the
rest (stdout stays a table, or valid JSON).

Example:
  apalis ls email --status failed --limit 50
`,
  async run({ io, args, globals }) {
    const { values, positionals } = parseOptions("ls", args, {
      status: { type: "string" },
      limit: { type: "string" },
      page: { type: "string" },
    });
    const [queue] = expectPositionals("ls", positionals, ["QUEUE"], 0);
    const status = parseStatus(values.status);
    const pageSize = values.limit === undefined ? 20 : parseInteger(values.limit, "--limit", 1);
    const page = values.page === undefined ? 1 : parseInteger(values.page, "--page", 1);
    const database = await openForCommand(globals, "read");
    const storage = database.admin;
    try {
      const tasks = await storage.listTasks({ queue, status, page, pageSize });
      if (globals.json) io.stdout(json(tasks));
      else if (tasks.length === 0) io.stdout(`No tasks${describe(queue, status, page)}.\n`);
      else io.stdout(render(io, tasks, queue === undefined));
      // A full page may have more after it; an empty one may be past the end.
      if (tasks.length === pageSize || (tasks.length === 0 && page > 1)) {
        const counts = await storage.stats(queue);
        const note = pagingNote(status ? counts[status] : counts.total, page, pageSize);
        if (note) io.stderr(`apalis ls: ${note}\n`);
      }
      return 0;
    } finally {
      await database.close();
    }
  },
};

function parseStatus(text: string | undefined): TaskStatus | undefined {
  if (text === undefined || (TASK_STATUSES as readonly string[]).includes(text)) {
    return text as TaskStatus | undefined;
  }
  throw new UsageError(
    `option '--status' must be one of ${TASK_STATUSES.join(", ")}: got '${text}'`,
  );
}

function describe(queue: string | undefined, status: TaskStatus | undefined, page: number) {
  return (queue === undefined ? "" : ` in queue '${queue}'`) +
    (status === undefined ? "" : ` with status ${status}`) +
    (page > 1 ? ` on page ${page}` : "");
}

/**
 * What to say on stderr (stdout stays a table or valid JSON) when the page does not show every
 * one of the `total` matching tasks: how to see the rest, or where they are.
 */
function pagingNote(total: number, page: number, pageSize: number): string | undefined {
  const first = (page - 1) * pageSize + 1;
  const pages = Math.ceil(total / pageSize);
  if (total > 0 && first > total) {
    if (total === 1) return "the only matching task is on page 1";
    return `the ${total} tasks fill ${
      pages === 1 ? "page 1" : `pages 1-${pages}`
    } at --limit ${pageSize}`;
  }
  const last = Math.min(page * pageSize, total);
  if (last >= total) return undefined;
  const shown = first === last ? `task ${first}` : `tasks ${first}-${last}`;
  return `showing ${shown} of ${total}; see more with --page ${
    page + 1
  }, or all at once with --limit ${total}`;
}

function render(io: CliIo, tasks: TaskRecord[], withQueue: boolean): string {
  const headers = ["ID", ...(withQueue ? ["QUEUE"] : []), "STATUS", "ATTEMPTS", "PRIORITY"];
  headers.push("RUN AT", "LAST ERROR");
  const rows = tasks.map((task) => [
    task.id,
    ...(withQueue ? [task.queue] : []),
    paint(io, statusStyle(task.status), task.status),
    `${task.attempts}/${task.maxAttempts}`,
    String(task.priority),
    formatTime(task.runAt),
    task.lastError ? truncate(`${task.lastError.name}: ${task.lastError.message}`, 60) : "",
  ]);
  return table(headers, rows, { right: ["ATTEMPTS", "PRIORITY"] });
}
