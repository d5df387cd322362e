import {
  type PushOptions,
  type PushResult,
  type Storage,
  Task,
  TASK_STATUSES,
  type TaskStatus,
  type UniqueOptions,
} from "../../../mod.ts";
import { createReadStream } from "node:fs";
import { type Command, openForCommand } from "../command.ts";
import { UsageError } from "../errors.ts";
import type { CliIo } from "../io.ts";
import {
  expectPositionals,
  json,
  parseDuration,
  parseInteger,
  parseOptions,
  plural,
} from "../format.ts";

/** Tasks written per transaction. */
const BATCH = 1000;

/** `apalis push`: enqueues one task, or many from an NDJSON file or standard input. */
export const pushCommand: Command = {
  name: "push",
  summary: "enqueue tasks: one JSON payload, or NDJSON from a file or stdin",
  help: `Usage: apalis push QUEUE JSON [options]
       apalis push QUEUE --file F.ndjson|- [options]

Enqueues one task whose payload is the JSON argument, or one task per non-empty line of an
NDJSON file (--file -: standard input). Every line is checked before anything is written: a
line that is not valid JSON writes nothing and exits 2, naming the line. Tasks are written in
transactions of ${BATCH}, with a progress bar on a terminal. Creates a missing database file;
an existing file must already have the apalis tables (see 'apalis init'). On PostgreSQL
(--db postgres://...) the database must exist; push sets up its apalis tables when missing.
Prints the new task ids, one per line.

With a unique option, a task is pushed only if no earlier task of the queue with the same key
(--unique-key, or else the same payload) blocks it: by default while the earlier one has not
finished (pending, queued, running, or failed and waiting for its retry); with --unique-period,
for that long after its push unless it was killed. A blocked push writes nothing and answers
the earlier task's id. Each output line is then 'ID inserted' or 'ID existing'; with --json,
objects {"id", "inserted"}. The check is made by the database, so concurrent pushes of one key
insert one task.

Options (they apply to every task pushed):
  -f, --file F          read NDJSON payloads from F ('-' for standard input)
  --priority N          higher runs first (default 0)
  --delay DURATION      run no earlier than this from now: 500ms, 5s, 10m, 2h, 7d
  --run-at ISO          run no earlier than this time, e.g. 2026-01-31T09:00:00Z
  --max-attempts N      attempts before the task is killed (default 5)
  --id ID               the task's id (one task only; exits 1 if the id exists)
  --unique              unique by payload, while the earlier task has not finished
  --unique-key K        unique by key K instead of the payload
  --unique-period DURATION
                        unique for this long after the earlier task's push: 30s, 1h, 1d
  --unique-states S,S   the states in which an earlier task blocks (of ${TASK_STATUSES.join(", ")})
  --json                print the ids as a JSON array (with a unique option: {"id", "inserted"})

Examples:
  apalis push email '{"to":"ada@example.com"}' --priority 5
  apalis push email --file emails.ndjson --delay 10m
  apalis push digest '{"customer":42}' --unique-key digest:42 --unique-period 1h
  jq -c '.[]' users.json | apalis push welcome --file -
`,
  async run({ io, args, globals }) {
    const { values, positionals } = parseOptions("push", args, {
      file: { type: "string", short: "f" },
      priority: { type: "string" },
      delay: { type: "string" },
      "run-at": { type: "string" },
      "max-attempts": { type: "string" },
      id: { type: "string" },
      unique: { type: "boolean" },
      "unique-key": { type: "string" },
      "unique-period": { type: "string" },
      "unique-states": { type: "string" },
    });
    const [queue, payload] = expectPositionals("push", positionals, ["QUEUE", "JSON"], 1);
    if (!queue) throw new UsageError("the queue name must not be empty");
    if (queue.includes("\0")) {
      throw new UsageError("the queue name must not contain a NUL character");
    }
    const options = pushOptions(values);
    const file = values.file;
    if (payload !== undefined && file !== undefined) {
      throw new UsageError("give either a JSON payload or --file, not both");
    }
    if (payload === undefined && file === undefined) {
      throw new UsageError(
        "missing the JSON payload (or --file F, or --file - for standard input)",
      );
    }
    if (options.id !== undefined && file !== undefined) {
      throw new UsageError("option '--id' names a single task: it cannot be used with --file");
    }
    const payloads = file === undefined
      ? [parseJson(payload!, "the JSON payload")]
      : await readNdjson(
        file === "-" ? io.stdin() : readText(file),
        file === "-" ? "standard input" : file,
      );
    if (payloads.length === 0) {
      io.stderr(`apalis push: no tasks in ${file === "-" ? "standard input" : file}\n`);
      if (globals.json) io.stdout(json([]));
      return 0;
    }
    const database = await openForCommand(globals, "create");
    try {
      const unique = options.unique !== undefined;
      const results = await write(io, database.storage(queue), payloads, options, {
        print: !globals.json,
        unique,
      });
      if (globals.json) io.stdout(json(unique ? results : results.map((result) => result.id)));
      return 0;
    } finally {
      await database.close();
    }
  },
};

function pushOptions(values: {
  priority?: string;
  delay?: string;
  "run-at"?: string;
  "max-attempts"?: string;
  id?: string;
  unique?: boolean;
  "unique-key"?: string;
  "unique-period"?: string;
  "unique-states"?: string;
}): PushOptions {
  const options: PushOptions = {};
  if (values.priority !== undefined) options.priority = parseInteger(values.priority, "--priority");
  if (values["max-attempts"] !== undefined) {
    options.maxAttempts = parseInteger(values["max-attempts"], "--max-attempts", 1);
  }
  if (values.delay !== undefined && values["run-at"] !== undefined) {
    throw new UsageError("give either --delay or --run-at, not both");
  }
  if (values.delay !== undefined) options.runAfter = parseDuration(values.delay, "--delay");
  if (values["run-at"] !== undefined) {
    const time = Date.parse(values["run-at"]);
    if (Number.isNaN(time)) {
      throw new UsageError(
        `option '--run-at' must be a date like 2026-01-31T09:00:00Z: got '${values["run-at"]}'`,
      );
    }
    options.runAt = time;
  }
  if (values.id !== undefined) {
    if (values.id === "") throw new UsageError("option '--id' must not be empty");
    options.id = values.id;
  }
  const unique = uniqueOptions(values);
  if (unique !== undefined) options.unique = unique;
  return options;
}

/** The unique options of the flags, or undefined when none is given. */
function uniqueOptions(values: {
  unique?: boolean;
  "unique-key"?: string;
  "unique-period"?: string;
  "unique-states"?: string;
}): UniqueOptions | undefined {
  const key = values["unique-key"];
  const period = values["unique-period"];
  const states = values["unique-states"];
  if (!values.unique && key === undefined && period === undefined && states === undefined) {
    return undefined;
  }
  const unique: UniqueOptions = {};
  if (key !== undefined) {
    if (key === "") throw new UsageError("option '--unique-key' must not be empty");
    if (key.startsWith("args:sha256:")) {
      throw new UsageError(
        "option '--unique-key' must not start with 'args:sha256:' (reserved for payload keys)",
      );
    }
    unique.key = key;
  }
  if (period !== undefined) {
    const ms = parseDuration(period, "--unique-period");
    if (ms <= 0) {
      throw new UsageError(`option '--unique-period' must be longer than 0: got '${period}'`);
    }
    unique.periodMs = ms;
  }
  if (states !== undefined) {
    const list = states.split(",").map((state) => state.trim());
    for (const state of list) {
      if (!(TASK_STATUSES as readonly string[]).includes(state)) {
        throw new UsageError(
          `option '--unique-states' takes states among ${
            TASK_STATUSES.join(", ")
          }, comma-separated: got '${state}'`,
        );
      }
    }
    unique.states = list as TaskStatus[];
  }
  return unique;
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${where} is not valid JSON: ${(error as Error).message}`);
  }
}

/** A file's text in chunks; a file that cannot be read is bad input. */
async function* readText(path: string): AsyncIterable<string> {
  try {
    for await (const chunk of createReadStream(path, { encoding: "utf8" })) yield chunk as string;
  } catch (error) {
    const reason = (error as { code?: string }).code === "ENOENT"
      ? "no such file"
      : (error as Error).message;
    throw new UsageError(`Cannot read '${path}': ${reason}`);
  }
}

/** Parses every non-empty line; the first bad one throws, naming its number. */
async function readNdjson(chunks: AsyncIterable<string>, name: string): Promise<unknown[]> {
  const payloads: unknown[] = [];
  let lineNumber = 0;
  const take = (line: string) => {
    lineNumber++;
    if (lineNumber === 1) line = line.replace(/^\uFEFF/, "");
    if (line.trim() !== "") payloads.push(parseJson(line, `line ${lineNumber} of ${name}`));
  };
  let rest = "";
  for await (const chunk of chunks) {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop()!;
    for (const line of lines) take(line);
  }
  take(rest);
  return payloads;
}

/**
 * Writes the tasks in batches, printing ids as they commit (with `unique`, each followed by
 * whether it was inserted); a progress bar on a terminal.
 */
async function write(
  io: CliIo,
  storage: Storage<unknown>,
  payloads: unknown[],
  options: PushOptions,
  output: { print: boolean; unique: boolean },
): Promise<PushResult[]> {
  const bar = io.isTerminal && payloads.length > 1;
  const results: PushResult[] = [];
  try {
    for (let start = 0; start < payloads.length; start += BATCH) {
      const tasks = payloads.slice(start, start + BATCH).map((args) => new Task(args, options));
      const written = await storage.pushAllDetailed(tasks);
      results.push(...written);
      if (bar) io.stderr("\r\x1b[2K");
      if (output.print) {
        io.stdout(
          written.map(({ id, inserted }) =>
            output.unique ? `${id} ${inserted ? "inserted" : "existing"}` : id
          ).join("\n") + "\n",
        );
      }
      if (bar) io.stderr(progress(results.length, payloads.length));
    }
  } catch (error) {
    if (results.length === 0) throw error;
    throw new Error(
      `${(error as Error).message} (${results.length} of ${
        plural(payloads.length, "task")
      } were written before the failure)`,
      { cause: error },
    );
  } finally {
    if (bar && results.length > 0) io.stderr("\n");
  }
  return results;
}

function progress(done: number, total: number): string {
  const width = 30;
  const filled = Math.round((done / total) * width);
  const percent = Math.floor((done / total) * 100);
  return `\r[${"#".repeat(filled)}${
    ".".repeat(width - filled)
  }] ${percent}% ${done}/${total} tasks`;
}
