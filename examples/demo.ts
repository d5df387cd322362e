// deno-lint-ignore-file no-console
/**
 * `deno task demo` (or `bun run examples/demo.ts`): a worker sending "emails" from a queue in a
 * SQLite file in the OS temp dir, recreated on each run.
 *
 * It pushes 48 tasks with mixed priorities, a few delayed, three that fail on their first
 * attempt (retried after a persisted backoff) and one that throws `AbortError` (killed). A worker
 * with concurrency 4 logs one line per outcome and stops once every task is done or killed; the
 * demo then prints the counts per state.
 *
 * @module
 */
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AbortError,
  openDatabase,
  SqliteStorage,
  type StatusCounts,
  Task,
  type TaskContext,
  WorkerBuilder,
  type WorkerEvent,
} from "../mod.ts";

interface Email {
  /** Sequence number, for the log. */
  n: number;
  kind: "password-reset" | "receipt" | "newsletter";
  to: string;
  /** Demo switch: the first attempt fails with a transient error. */
  flaky?: boolean;
  /** Demo switch: the address does not exist, so retrying cannot help. */
  bounce?: boolean;
}

const path = join(tmpdir(), "apalis-demo.db");
for (const suffix of ["", "-wal", "-shm"]) rmSync(path + suffix, { force: true });
console.log(`database: ${path}`);

const db = openDatabase(path);
SqliteStorage.setup(db);
const emails = new SqliteStorage<Email>(db, "email");

// 48 emails: password resets first (priority 2), then receipts (1), then newsletters (0).
const names = ["ada", "grace", "alan", "edsger", "barbara", "donald", "ken", "margaret"];
const kinds = [
  { kind: "password-reset", priority: 2 },
  { kind: "receipt", priority: 1 },
  { kind: "newsletter", priority: 0 },
] as const;
const DELAYED = new Set([10, 23, 36, 48]);
const tasks: Task<Email>[] = [];
for (let n = 1; n <= 48; n++) {
  const { kind, priority } = kinds[n % 3]!;
  const email: Email = { n, kind, to: `${names[n % names.length]}@example.com` };
  const builder = Task.builder(email).priority(priority);
  if (DELAYED.has(n)) builder.runAfter(800 + 10 * n); // scheduled for later
  if (n === 7 || n === 20 || n === 33) email.flaky = true;
  if (n === 41) Object.assign(email, { bounce: true, to: "nobody@invalid" });
  tasks.push(builder.build());
}
const ids = await emails.pushAll(tasks);
const byId = new Map(ids.map((id, i) => [id, tasks[i]!.args]));
console.log(`pushed ${ids.length} emails (4 delayed, 3 flaky, 1 bouncing); worker concurrency 4\n`);

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}

async function sendEmail(email: Email, ctx: TaskContext): Promise<string> {
  if (email.bounce) throw new AbortError(`mailbox ${email.to} does not exist`);
  await delay(20 + Math.floor(Math.random() * 60), ctx.signal); // "talking to the SMTP server"
  if (email.flaky && ctx.attempt === 1) throw new Error("SMTP 421: try again later");
  return `250 OK queued as ${ctx.taskId.slice(-6)}`;
}

const started = Date.now();
function log(event: WorkerEvent): string | undefined {
  if (event.type !== "success" && !(event.type === "error" && event.task)) return undefined;
  const task = event.task!;
  const email = byId.get(task.taskId);
  const what = email
    ? `#${String(email.n).padStart(2, "0")} ${email.kind.padEnd(14)} → ${email.to.padEnd(20)}`
    : task.taskId;
  const at = `+${((Date.now() - started) / 1000).toFixed(2)}s`;
  if (event.type === "success") {
    return `${at}  sent    ${what} attempt ${task.attempt}, ${task.durationMs} ms`;
  }
  const message = event.error instanceof Error ? event.error.message : String(event.error);
  if (event.status === "failed") {
    const inMs = Math.max(0, (event.retryAt ?? Date.now()) - Date.now());
    return `${at}  retry   ${what} ${message}; retry scheduled in ${inMs} ms`;
  }
  return `${at}  killed  ${what} ${message}`;
}

function unfinished(counts: StatusCounts): number {
  return counts.pending + counts.queued + counts.running + counts.failed;
}

const worker = new WorkerBuilder("mailer-1")
  .backend(emails)
  .concurrency(4)
  .retry({ backoff: { initialMs: 200 } }) // persisted: the retry waits in the database
  .onEvent((ctx, event) => {
    const line = log(event);
    if (line) console.log(line);
    // Outcomes are reported after they are committed, so the counts are already up to date.
    if (event.type === "success" || event.type === "error") {
      void emails.stats("email").then((counts) => {
        if (unfinished(counts) === 0) ctx.stop();
      });
    }
  })
  .build(sendEmail);
await worker.run();

const counts = await emails.stats("email");
console.log(`\nworker stopped after ${((Date.now() - started) / 1000).toFixed(2)} s\n`);
console.log("state     tasks");
for (const state of ["pending", "queued", "running", "done", "failed", "killed"] as const) {
  console.log(`${state.padEnd(8)} ${String(counts[state]).padStart(6)}`);
}
console.log(`${"total".padEnd(8)} ${String(counts.total).padStart(6)}`);

const retried = (await emails.listTasks({ status: "done", pageSize: 100 }))
  .filter((task) => task.attempts > 1).length;
const [killed] = await emails.listTasks({ status: "killed" });
console.log(`\n${retried} tasks succeeded on a retry`);
if (killed) console.log(`killed: ${killed.lastError?.name}: ${killed.lastError?.message}`);
db.close();
