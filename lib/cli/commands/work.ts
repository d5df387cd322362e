import { Config, type RetentionOptions, WorkerBuilder } from "../../../mod.ts";
import { hostname } from "node:os";
import process from "node:process";
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
  parseSize,
  truncate,
} from "../format.ts";
import { DEFAULT_MAX_OUTPUT, describe, MAX_OUTPUT_LIMIT } from "../runners/output.ts";
import { execRunner } from "../runners/exec.ts";
import { httpRunner } from "../runners/http.ts";
import { RateMeter, StatusLine } from "../status_line.ts";

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

Each --exec command runs in a process group of its own: a timeout, a kill of its task (apalis
kill, from any process), and a shutdown that outlasts --shutdown-timeout send SIGTERM to the
whole group (children and grandchildren), then SIGKILL 2s later; --http aborts the request. If the worker itself is killed with SIGKILL (kill -9), nothing ends its commands:
each group keeps running to its end, unsupervised, and its task stays 'running' until it is
rescued and runs again: at once by a worker restarted on this host with the same --name, else
at the next heartbeat (every 30s) of another worker on the database, after 5 minutes of silence
if it runs on another host. On PostgreSQL (--db postgres://...), whose workers may run on many
hosts, only heartbeats count: its tasks are rescued after 5 minutes of silence, and until then
a worker started with the same --name is refused (the default name, HOST-PID, is new each
time). Make commands safe to run twice, or end a leftover group with kill -- -PGID (see
ps -o pid,pgid,args).

--exec "CMD" runs CMD with /bin/sh once per task, in its own process group, with:
  stdin              the task's payload as JSON
  APALIS_TASK_ID     the task's id
  APALIS_ATTEMPT     the attempt number (1, 2, ...)
  APALIS_QUEUE       the queue name
  (and this process's environment). Exit code 0: the task is done and its standard output,
  trimmed, is stored as the result (parsed if it is JSON, else as text; no output, no result).
  Any other exit code: the attempt failed, with the exit code and the end of stderr as the
  error; the task is retried with backoff, and killed after its last attempt. Each line it
  writes to stderr is also stored in the task's log as it comes ('apalis logs ID --follow').

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
  --max-attempts N           cap on attempts for this worker: a task is killed once it has
                             used N attempts, so attempt N kills it if it fails, times out or
                             is interrupted by the shutdown, instead of retrying it. Tasks
                             keep the limit they were pushed with (apalis push --max-attempts,
                             default 5), so the lower of the two applies.
  --backoff DURATION         delay before the first retry, doubling on each later one (max 1h,
                             +-20% jitter; default 1s). A backoff given when pushing wins.
  --name NAME                the worker's name (default HOST-PID); unique among live workers
  --shutdown-timeout DURATION
                             on shutdown, how long running tasks may finish before they are
                             interrupted like a timeout (default 30s)
  --max-output SIZE          the most a command may print on stdout, or an endpoint answer
                             with a 2xx, stored as the result: 65536, 512KiB, 16MiB (1024-based
                             units; default 16MiB, at most 256MiB). Past it the attempt fails
                             (the command is killed; the rest of the body is not read).
  --retain-done DURATION     delete done tasks of QUEUE this long after they finished, e.g.
                             12h, 7d, 2w, or 'forever' to keep them (default 7d)
  --retain-killed DURATION   the same for killed tasks (default 30d)
  --json                     print the final summary as JSON

Retention: the running workers of QUEUE delete its expired done and killed tasks (see
--retain-done, --retain-killed) about once a minute, one worker at a time across processes and
hosts, 1,000 per transaction; a workflow run's tasks go with the whole run, once it has
finished and all of them have expired. Give every worker of a queue the same settings.

On a terminal a status line on stderr shows done, failed and killed counts, tasks in flight and
tasks per second. Failed attempts are logged to stderr, one line each. At exit, a one-line
summary is printed on stdout.

Examples:
  apalis work email --exec './send-email.sh' --concurrency 4 --timeout 30s
  apalis --db postgres://app@db.internal:5432/app work email --exec './send-email.sh'
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
      "max-output": { type: "string" },
      "retain-done": { type: "string" },
      "retain-killed": { type: "string" },
    });
    const [queue] = expectPositionals("work", positionals, ["QUEUE"]);
    if (!queue) throw new UsageError("the queue name must not be empty");
    if (queue.includes("\0")) {
      throw new UsageError("the queue name must not contain a NUL character");
    }
    if ((values.exec === undefined) === (values.http === undefined)) {
      throw new UsageError(
        `give exactly one of --exec "CMD" or --http URL (see 'apalis work --help')`,
      );
    }
    if (values.exec?.trim() === "") throw new UsageError("option '--exec' needs a command");
    const url = optional(values.http, "--http", parseUrl);
    const concurrency = optional(values.concurrency, "--concurrency", atLeastOne) ?? 1;
    const timeoutMs = optional(values.timeout, "--timeout", positiveDuration);
    const maxAttempts = optional(values["max-attempts"], "--max-attempts", atLeastOne);
    const backoffMs = optional(values.backoff, "--backoff", parseDuration);
    const shutdownTimeoutMs = optional(
      values["shutdown-timeout"],
      "--shutdown-timeout",
      parseDuration,
    );
    const maxOutputBytes = optional(values["max-output"], "--max-output", maxOutput) ??
      DEFAULT_MAX_OUTPUT;
    const retention: RetentionOptions = {};
    const retainDone = optional(values["retain-done"], "--retain-done", retentionAge);
    if (retainDone !== undefined) retention.done = retainDone;
    const retainKilled = optional(values["retain-killed"], "--retain-killed", retentionAge);
    if (retainKilled !== undefined) retention.killed = retainKilled;
    if (values.name === "") throw new UsageError("option '--name' must not be empty");
    const name = values.name ?? defaultWorkerName();

    const database = await openForCommand(globals, "write");
    const runner = url === undefined
      ? execRunner(values.exec!, io.env, { maxOutputBytes })
      : httpRunner(url, { maxOutputBytes });
    try {
      const counts = { done: 0, failed: 0, killed: 0 };
      const finished = () => counts.done + counts.failed + counts.killed;
      const meter = new RateMeter();
      const status = new StatusLine(io, () => {
        meter.sample(finished());
        return [
          paint(io, "bold", queue),
          paint(io, "green", `${counts.done} done`),
          counts.failed > 0 ? paint(io, "yellow", `${counts.failed} failed`) : "0 failed",
          counts.killed > 0 ? paint(io, "red", `${counts.killed} killed`) : "0 killed",
          `${worker.inFlight} in flight`,
          `${meter.perSecond().toFixed(1)} tasks/s`,
        ].join(paint(io, "dim", " · "));
      });

      const builder = new WorkerBuilder(name)
        .backend(database.storage(new Config(queue).setRetention(retention)))
        .concurrency(concurrency)
        .handleSignals(false)
        .onEvent((_, event) => {
          if (event.type === "start") {
            status.log(
              `Worker '${name}' on queue '${queue}' (${
                url === undefined ? "--exec" : `--http ${url}`
              }, concurrency ${concurrency}); Ctrl-C to stop`,
            );
          } else if (event.type === "success") {
            counts.done++;
          } else if (event.type === "error") {
            const error = truncate(describe(event.error), 300);
            if (!event.task) return status.log(`apalis work: ${error}`);
            const { task, retryAt } = event;
            const killed = event.status === "killed";
            counts[killed ? "killed" : "failed"]++;
            const outcome = killed
              ? paint(io, "red", "killed")
              : `failed${
                retryAt === undefined
                  ? ""
                  : ` (retry in ${formatDuration(Math.max(0, retryAt - Date.now()))})`
              }`;
            status.log(
              `task ${task.taskId} attempt ${task.attempt}/${
                Math.min(task.maxAttempts, maxAttempts ?? Infinity)
              } ${outcome}: ${error}`,
            );
          }
        });
      if (timeoutMs !== undefined) builder.timeout(timeoutMs);
      if (maxAttempts !== undefined) builder.maxAttempts(maxAttempts);
      if (backoffMs !== undefined) {
        builder.retry({
          backoff: { initialMs: backoffMs, maxMs: Math.max(backoffMs, 3_600_000) },
        });
      }
      if (shutdownTimeoutMs !== undefined) builder.shutdownTimeout(shutdownTimeoutMs);
      const worker = builder.build(runner);

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
      await runner.close?.();
      await database.close();
    }
  },
};

/** `parse(text, option)` for an option that was given; `undefined` for one that was not. */
function optional<T>(
  text: string | undefined,
  option: string,
  parse: (text: string, option: string) => T,
): T | undefined {
  return text === undefined ? undefined : parse(text, option);
}

/** A retention age: a duration, or `forever`. */
function retentionAge(text: string, option: string): number | "forever" {
  if (text.trim() === "forever") return "forever";
  try {
    return parseDuration(text, option);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    throw new UsageError(`${error.message} (or 'forever' to keep them)`);
  }
}

function atLeastOne(text: string, option: string): number {
  return parseInteger(text, option, 1);
}

function positiveDuration(text: string, option: string): number {
  const ms = parseDuration(text, option);
  if (ms < 1) throw new UsageError(`option '${option}' must be at least 1ms: got '${text}'`);
  return ms;
}

function maxOutput(text: string, option: string): number {
  return parseSize(text, option, { min: 1, max: MAX_OUTPUT_LIMIT });
}

function parseUrl(text: string, option: string): URL {
  const url = URL.parse(text);
  if (url?.protocol !== "http:" && url?.protocol !== "https:") {
    throw new UsageError(`option '${option}' must be an http(s) URL: got '${text}'`);
  }
  return url;
}

/**
 * `host-pid`, the name a worker gets without `--name`: the host and process id the worker
 * records (`"unknown"` when the runtime may not read the host name).
 */
function defaultWorkerName(): string {
  let host: string;
  try {
    host = hostname();
  } catch {
    host = "unknown";
  }
  return `${host}-${process.pid}`;
}
