import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { HOST_NAME, PROCESS_ID } from "../../storage/_process.ts";
import type { SqliteStorage } from "../../storage/sqlite_storage.ts";
import type { TaskContext } from "../../worker/context.ts";
import { AbortError } from "../../worker/errors.ts";
import type { Handler } from "../../worker/worker.ts";
import { WorkerBuilder } from "../../worker/worker_builder.ts";
import { type Command, openForCommand } from "../command.ts";
import { UsageError } from "../errors.ts";
import {
  expectPositionals,
  formatDuration,
  json,
  paint,
  parseDuration,
  parseInteger,
  parseOptions,
  truncate,
} from "../format.ts";
import { RateMeter, StatusLine } from "../status_line.ts";

/** How much of a failed command's stderr (or a failed request's body) is kept, in characters. */
const ERROR_TEXT_MAX = 4096;
/** Standard output beyond this fails the attempt (it is stored as the result). */
const STDOUT_MAX = 16 * 1024 * 1024;
/** After SIGTERM, how long a command gets before SIGKILL. */
const KILL_GRACE_MS = 2000;
/** After the command exits, how long its output pipes may stay open (a background child). */
const CLOSE_GRACE_MS = 1000;

/** `apalis work`: runs a worker that executes a shell command, or calls a URL, per task. */
export const workCommand: Command = {
  name: "work",
  summary: "run a worker: a shell command (--exec) or an HTTP endpoint (--http) per task",
  help: `Usage: apalis work QUEUE --exec "CMD" [options]
       apalis work QUEUE --http URL [options]

Runs a worker on QUEUE until Ctrl-C or SIGTERM, then shuts down gracefully: it stops taking
tasks, releases the ones it had taken but not started, and lets running ones finish (see
--shutdown-timeout). Exit code 0 after a graceful stop. A second Ctrl-C exits at once (code
130) and sends running commands SIGTERM; their tasks are rescued by the next worker.

--exec "CMD" runs CMD with /bin/sh once per task, in its own process group, with:
  stdin              the task's payload as JSON
  APALIS_TASK_ID     the task's id
  APALIS_ATTEMPT     the attempt number (1, 2, ...)
  APALIS_QUEUE       the queue name
  (and this process's environment). Exit code 0: the task is done and its standard output,
  trimmed, is stored as the result (parsed if it is JSON, else as text; no output, no result).
  Any other exit code: the attempt failed, with the exit code and the end of stderr as the
  error; the task is retried with backoff, and killed after its last attempt.

--http URL POSTs the payload as JSON (content-type application/json) with the headers
  X-Apalis-Task-Id, X-Apalis-Attempt and X-Apalis-Queue. A 2xx answer: done, the body stored
  as the result (parsed if it is JSON, else as text). Any other status, or a network error:
  the attempt failed, with the status and the start of the body as the error.

Options:
  --exec CMD                 the shell command to run per task
  --http URL                 the http(s) URL to POST each task to (exactly one of the two)
  -c, --concurrency N        tasks run at once (default 1)
  --timeout DURATION         time limit per attempt, e.g. 30s: the command gets SIGTERM (its
                             process group), then SIGKILL 2s later; the request is aborted;
                             the attempt fails with TaskTimeoutError (default: no limit)
  --max-attempts N           cap on attempts for this worker: a failed attempt number N or
                             more kills the task instead of retrying it, and a task already
                             past N is killed without running. Tasks keep the limit they were
                             pushed with (apalis push --max-attempts, default 5), so the
                             lower of the two applies.
  --backoff DURATION         delay before the first retry, doubling on each later one (max 1h,
                             +-20% jitter; default 1s). A backoff given when pushing wins.
  --name NAME                the worker's name (default HOST-PID); unique among live workers
  --shutdown-timeout DURATION
                             on shutdown, how long running tasks may finish before they are
                             interrupted like a timeout (default 30s)
  --json                     print the final summary as JSON

On a terminal a status line on stderr shows done, failed and killed counts, tasks in flight and
tasks per second. Failed attempts are logged to stderr, one line each. At exit, a one-line
summary is printed on stdout.

Examples:
  apalis work email --exec './send-email.sh' --concurrency 4 --timeout 30s
  apalis work thumbnails --exec 'jq -r .path | xargs convert-thumb'
  apalis work webhooks --http https://example.com/hooks/apalis --timeout 10s
`,
  async run({ io, args, globals }) {
    const { values, positionals } = parseOptions("work", args, {
      exec: { type: "string" },
      http: { type: "string" },
      concurrency: { type: "string", short: "c" },
      timeout: { type: "string" },
      "max-attempts": { type: "string" },
      backoff: { type: "string" },
      name: { type: "string" },
      "shutdown-timeout": { type: "string" },
    });
    const [queue] = expectPositionals("work", positionals, ["QUEUE"]);
    if (!queue) throw new UsageError("the queue name must not be empty");
    if ((values.exec === undefined) === (values.http === undefined)) {
      throw new UsageError(
        `give exactly one of --exec "CMD" or --http URL (see 'apalis work --help')`,
      );
    }
    if (values.exec !== undefined && values.exec.trim() === "") {
      throw new UsageError("option '--exec' needs a command");
    }
    const url = values.http === undefined ? undefined : parseUrl(values.http);
    const concurrency = values.concurrency === undefined
      ? 1
      : parseInteger(values.concurrency, "--concurrency", 1);
    const timeoutMs = values.timeout === undefined
      ? undefined
      : positiveDuration(values.timeout, "--timeout");
    const maxAttempts = values["max-attempts"] === undefined
      ? undefined
      : parseInteger(values["max-attempts"], "--max-attempts", 1);
    const backoffMs = values.backoff === undefined
      ? undefined
      : parseDuration(values.backoff, "--backoff");
    const shutdownTimeoutMs = values["shutdown-timeout"] === undefined
      ? undefined
      : parseDuration(values["shutdown-timeout"], "--shutdown-timeout");
    if (values.name !== undefined && values.name === "") {
      throw new UsageError("option '--name' must not be empty");
    }
    const name = values.name ?? `${HOST_NAME}-${PROCESS_ID}`;

    const { db, storage: base } = openForCommand(globals);
    const children = new Children();
    const counts = { done: 0, failed: 0, killed: 0 };
    const finished = () => counts.done + counts.failed + counts.killed;
    const meter = new RateMeter();
    let inFlight = () => 0;
    const status = new StatusLine(io, () => {
      meter.sample(finished());
      return [
        paint(io, "bold", queue),
        paint(io, "green", `${counts.done} done`),
        counts.failed > 0 ? paint(io, "yellow", `${counts.failed} failed`) : "0 failed",
        counts.killed > 0 ? paint(io, "red", `${counts.killed} killed`) : "0 killed",
        `${inFlight()} in flight`,
        `${meter.perSecond().toFixed(1)} tasks/s`,
      ].join(paint(io, "dim", " · "));
    });
    try {
      const storage = base.forQueue(queue);
      const execute: Handler<unknown> = url === undefined
        ? (payload, ctx) => runCommand(values.exec!, payload, ctx, io.env, children)
        : (payload, ctx) => post(url, payload, ctx);
      const handler: Handler<unknown> = maxAttempts === undefined
        ? execute
        : capAttempts(execute, maxAttempts, storage);

      let builder = new WorkerBuilder(name)
        .backend(storage)
        .concurrency(concurrency)
        .handleSignals(false)
        .onEvent((_, event) => {
          if (event.type === "start") {
            status.log(
              `Worker '${name}' on queue '${queue}' (${
                url === undefined ? "--exec" : `--http ${url}`
              }, concurrency ${concurrency}); Ctrl-C to stop`,
            );
          } else if (event.type === "success") counts.done++;
          else if (event.type === "error") {
            if (event.task) {
              const { task } = event;
              counts[event.status === "killed" ? "killed" : "failed"]++;
              const outcome = event.status === "killed"
                ? paint(io, "red", "killed")
                : `failed${
                  event.retryAt === undefined
                    ? ""
                    : ` (retry in ${formatDuration(Math.max(0, event.retryAt - Date.now()))})`
                }`;
              status.log(
                `task ${task.taskId} attempt ${task.attempt}/${
                  Math.min(task.maxAttempts, maxAttempts ?? Infinity)
                } ${outcome}: ${truncate(describe(event.error), 300)}`,
              );
            } else {
              status.log(`apalis work: ${truncate(describe(event.error), 300)}`);
            }
          }
        });
      if (timeoutMs !== undefined) builder = builder.timeout(timeoutMs);
      if (backoffMs !== undefined) {
        builder = builder.retry({
          backoff: { initialMs: backoffMs, maxMs: Math.max(backoffMs, 3_600_000) },
        });
      }
      if (shutdownTimeoutMs !== undefined) builder = builder.shutdownTimeout(shutdownTimeoutMs);
      const worker = builder.build(handler);

      inFlight = () => worker.inFlight;

      const started = Date.now();
      status.start();
      try {
        await worker.runUntil(io.signal);
      } finally {
        status.stop();
      }
      const elapsedMs = Date.now() - started;
      if (globals.json) {
        io.stdout(json({ worker: name, queue, ...counts, elapsedMs }));
      } else {
        const rate = finished() / Math.max(elapsedMs / 1000, 0.001);
        io.stdout(
          `Worker '${name}' stopped after ${
            formatDuration(elapsedMs)
          }: ${counts.done} done, ${counts.failed} failed, ${counts.killed} killed (${
            rate.toFixed(1)
          } tasks/s)\n`,
        );
      }
      return 0;
    } finally {
      status.stop();
      await children.close();
      db.close();
    }
  },
};

/**
 * The commands of one `work` run: if the process exits abruptly (a second Ctrl-C), running ones
 * get SIGTERM (they run in their own process groups, so the terminal's signal does not reach
 * them); a clean exit waits until timed-out ones had their SIGKILL.
 */
class Children {
  /** Sends SIGTERM to one running command's process group. */
  readonly running = new Set<() => void>();
  /** Settle once a terminated command's group is gone or got SIGKILL. */
  readonly reapers = new Set<Promise<void>>();
  #onExit = () => {
    for (const terminate of this.running) terminate();
  };

  constructor() {
    process.on("exit", this.#onExit);
  }

  async close(): Promise<void> {
    await Promise.all(this.reapers);
    process.off("exit", this.#onExit);
  }
}

/** A failed command or request: no stack (it would show this program's internals). */
class ExecutionError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
    this.stack = undefined;
  }
}

function parseUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`option '--http' must be an http(s) URL: got '${text}'`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`option '--http' must be an http(s) URL: got '${text}'`);
  }
  return url;
}

function positiveDuration(text: string, option: string): number {
  const ms = parseDuration(text, option);
  if (ms < 1) throw new UsageError(`option '${option}' must be at least 1ms: got '${text}'`);
  return ms;
}

/**
 * `--max-attempts N`: an attempt numbered N or more that fails kills the task (AbortError); an
 * attempt past N (a timeout or shutdown ended attempt N, or the cap was lowered) is killed
 * without running.
 */
function capAttempts(
  execute: Handler<unknown>,
  max: number,
  storage: SqliteStorage,
): Handler<unknown> {
  return async (payload, ctx) => {
    if (ctx.attempt > max) {
      const previous = (await storage.fetchById(ctx.taskId))?.lastError;
      throw new AbortError(
        `Not run: attempt ${ctx.attempt} exceeds --max-attempts ${max}${
          previous ? `; the last attempt failed with ${previous.name}: ${previous.message}` : ""
        }`,
      );
    }
    try {
      return await execute(payload, ctx);
    } catch (error) {
      if (ctx.attempt < max || ctx.signal.aborted || !(error instanceof Error)) throw error;
      const killed = new AbortError(
        `${error.message} (attempt ${ctx.attempt} of --max-attempts ${max})`,
        {
          cause: error,
        },
      );
      killed.name = error.name; // keep what failed (CommandError, HttpError) in lastError
      killed.stack = undefined;
      throw killed;
    }
  };
}

/** Text with its parsed JSON value when it is JSON; trimmed; `undefined` when empty. */
function parseOutput(text: string): unknown {
  const trimmed = text.trim();
  if (trimmed === "") return undefined;
  try {
    return JSON.parse(trimmed);
  } catch {
    return trimmed;
  }
}

/** The last `ERROR_TEXT_MAX` characters of `text`, trimmed. */
function tail(text: string): string {
  const trimmed = text.trim();
  return trimmed.length <= ERROR_TEXT_MAX ? trimmed : `…${trimmed.slice(-ERROR_TEXT_MAX)}`;
}

/** The first `ERROR_TEXT_MAX` characters of `text`, trimmed. */
function head(text: string): string {
  const trimmed = text.trim();
  return trimmed.length <= ERROR_TEXT_MAX ? trimmed : `${trimmed.slice(0, ERROR_TEXT_MAX)}…`;
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new Error("The attempt was aborted");
}

/** Runs `command` for one task; resolves with its parsed stdout, rejects on failure. */
function runCommand(
  command: string,
  payload: unknown,
  ctx: TaskContext,
  env: Readonly<Record<string, string | undefined>>,
  children: Children,
): Promise<unknown> {
  const signal = ctx.signal;
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn("/bin/sh", ["-c", command], {
        detached: true, // its own process group: a timeout kills the whole pipeline
        stdio: ["pipe", "pipe", "pipe"],
        env: {
          ...env,
          APALIS_TASK_ID: ctx.taskId,
          APALIS_ATTEMPT: String(ctx.attempt),
          APALIS_QUEUE: ctx.queue,
        },
      });
    } catch (error) {
      reject(new ExecutionError("CommandError", `Cannot start /bin/sh: ${describe(error)}`));
      return;
    }
    let stdout = "";
    let stderr = "";
    let overflow = false;
    let settled = false;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let closeTimer: ReturnType<typeof setTimeout> | undefined;
    let terminating = false;
    let endReaper: (() => void) | undefined;

    const killGroup = (sig: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        try {
          child.kill(sig);
        } catch {
          // already gone
        }
      }
    };
    const groupAlive = () => {
      if (child.pid === undefined) return false;
      try {
        process.kill(-child.pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    /** SIGTERM to the group, SIGKILL after the grace period (the command waits for it). */
    const terminate = () => {
      if (terminating) return;
      terminating = true;
      killGroup("SIGTERM");
      const reaper = new Promise<void>((done) => {
        const timer = setTimeout(() => {
          killGroup("SIGKILL");
          done();
        }, KILL_GRACE_MS);
        endReaper = () => {
          clearTimeout(timer);
          done();
        };
      });
      children.reapers.add(reaper);
      void reaper.then(() => children.reapers.delete(reaper));
    };
    const onAbort = () => terminate();
    signal.addEventListener("abort", onAbort, { once: true });
    const onExit = () => killGroup("SIGTERM");
    children.running.add(onExit);

    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(closeTimer);
      signal.removeEventListener("abort", onAbort);
      children.running.delete(onExit);
      child.stdout?.destroy();
      child.stderr?.destroy();
      // A terminated group that is gone needs no SIGKILL later.
      if (endReaper && !groupAlive()) endReaper();
      if (signal.aborted) return reject(abortReason(signal));
      if (overflow) {
        return reject(
          new ExecutionError(
            "CommandError",
            `Command wrote more than ${
              STDOUT_MAX / 1024 / 1024
            } MiB to stdout (stored as the result); it was killed`,
          ),
        );
      }
      if (exit?.code === 0) return resolve(parseOutput(stdout));
      const how = exit?.signal ? `was killed by ${exit.signal}` : `exited with code ${exit?.code}`;
      const err = tail(stderr);
      reject(
        new ExecutionError(
          "CommandError",
          `Command ${how}${err === "" ? " (nothing on stderr)" : `: ${err}`}`,
        ),
      );
    };

    child.on("error", (error) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", onAbort);
      children.running.delete(onExit);
      reject(new ExecutionError("CommandError", `Cannot run /bin/sh: ${error.message}`));
    });
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      if (overflow) return;
      stdout += chunk;
      if (stdout.length > STDOUT_MAX) {
        overflow = true;
        stdout = "";
        terminate();
      }
    });
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      stderr += chunk;
      if (stderr.length > 4 * ERROR_TEXT_MAX) stderr = stderr.slice(-2 * ERROR_TEXT_MAX);
    });
    child.stdin!.on("error", () => {
      // The command need not read its input (EPIPE).
    });
    child.stdin!.end(JSON.stringify(payload) ?? "null");
    child.on("exit", (code, sig) => {
      exit = { code, signal: sig };
      // Normally 'close' follows at once; a background process may hold the pipes open.
      closeTimer = setTimeout(finish, CLOSE_GRACE_MS);
    });
    child.on("close", (code, sig) => {
      exit ??= { code, signal: sig };
      finish();
    });
  });
}

/** POSTs the payload to `url` for one task; resolves with the parsed body of a 2xx answer. */
async function post(url: URL, payload: unknown, ctx: TaskContext): Promise<unknown> {
  const signal = ctx.signal;
  let response: Response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-apalis-task-id": ctx.taskId,
        "x-apalis-attempt": String(ctx.attempt),
        "x-apalis-queue": ctx.queue,
      },
      body: JSON.stringify(payload) ?? "null",
      signal,
    });
  } catch (error) {
    if (signal.aborted) throw abortReason(signal);
    throw new ExecutionError(
      "HttpError",
      `POST ${url} failed: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  let body: string;
  try {
    body = await response.text();
  } catch (error) {
    if (signal.aborted) throw abortReason(signal);
    throw new ExecutionError(
      "HttpError",
      `POST ${url}: reading the ${response.status} response failed: ${
        error instanceof Error ? error.message : String(error)
      }`,
    );
  }
  if (response.ok) return parseOutput(body);
  const excerpt = head(body);
  throw new ExecutionError(
    "HttpError",
    `POST ${url} answered ${response.status}${
      response.statusText ? ` ${response.statusText}` : ""
    }${excerpt === "" ? "" : `: ${excerpt}`}`,
  );
}
