import type { TaskLogLine, TaskProgress, TaskRecord } from "../../../mod.ts";
import { formatAgo } from "../../format/duration.ts";
import { badge, pretty, prettyShown, timeTag } from "../format.ts";
import { type Html, html } from "../html.ts";
import { href, type Page, type PageContext } from "../layout.ts";

/** What the task page says after an action (fixed texts: nothing from the URL is shown). */
export type TaskNotice = "retried" | "killed" | "refused-retry" | "refused-kill" | null;

const NOTICES: Record<Exclude<TaskNotice, null>, [string, string]> = {
  "retried": ["ok", "Retried: the task is pending again with a fresh attempt budget."],
  "killed": ["ok", "Killed: the task will not run again unless retried."],
  "refused-retry": ["error", "Cannot retry: the task is queued or running."],
  "refused-kill": ["error", "Cannot kill: the task has already finished."],
};

/**
 * A value in a `<pre>`: its first 64 KiB (the page refreshes itself, a 5 MB one each time), and
 * then a link to the whole task as JSON.
 */
function shownWhole(
  ctx: PageContext,
  task: TaskRecord,
  field: string,
  value: unknown,
  cls = "",
): Html {
  const shown = prettyShown(value);
  return html`<pre class="${cls}" data-field="${field}">${shown.text}</pre>${
    shown.cut
      ? html`
        <p
          class="muted">Only the first 64 KiB are shown: the whole task is at <a href="${href(
            ctx,
            `/api/tasks/${encodeURIComponent(task.id)}`,
          )}" data-whole="${field}">/api/tasks/${task.id}</a> (JSON).</p>
      `
      : ""
  }`;
}

/** Whether each action applies to a task in its state. */
export function taskActions(task: TaskRecord): { retry: boolean; kill: boolean } {
  return {
    retry: task.status !== "queued" && task.status !== "running",
    kill: task.status !== "done" && task.status !== "killed",
  };
}

/** The progress: a bar for a number, the JSON of an object; with its attempt and time. */
function progressView(ctx: PageContext, task: TaskRecord, progress: TaskProgress): Html {
  const { value, attempt, at } = progress;
  const earlier = attempt !== task.attempts
    ? html`
      <span class="muted">(attempt ${attempt})</span>
    `
    : "";
  const when = html`<span class="muted">${formatAgo(at, ctx.now)}</span>`;
  if (typeof value === "number") {
    return html`
      <progress max="100" value="${value}"></progress> <span
        data-field="progress">${value}%</span>${earlier} ${when}
    `;
  }
  return html`<code data-field="progress">${JSON.stringify(value)}</code>${earlier} ${when}`;
}

/** The latest attempt's last lines, oldest first. */
function logView(ctx: PageContext, task: TaskRecord, lines: readonly TaskLogLine[]): Html {
  if (lines.length === 0) return html``;
  const text = lines.map((line) => `${new Date(line.at).toISOString().slice(11, 23)}  ${line.line}`)
    .join("\n");
  return html`
    <h2>Log <span class="muted">(attempt ${task.attempts}, last ${lines.length === 1
      ? "line"
      : `${lines.length} lines`})</span></h2>
    <pre class="log" data-field="log">${text}</pre>
    <p
      class="muted">Every line, of every attempt: <a href="${href(
        ctx,
        `/api/tasks/${encodeURIComponent(task.id)}/logs`,
      )}">/api/tasks/${task.id}/logs</a> (JSON), or <code>apalis logs ${task.id}</code>.</p>
  `;
}

/**
 * One task: arguments, result or error, attempts, times, worker, progress and the latest
 * attempt's last log lines; retry, kill, delete.
 */
export function taskPage(
  ctx: PageContext,
  task: TaskRecord,
  notice: TaskNotice,
  lines: readonly TaskLogLine[] = [],
): Page {
  const path = `/tasks/${encodeURIComponent(task.id)}`;
  const can = taskActions(task);
  const action = (name: string, label: string, question: string, cls = ""): Html =>
    html`<form method="post" action="${href(ctx, `${path}/${name}`)}" data-confirm="${question}">
      <button type="submit" class="${cls}" data-action="${name}">${label}</button></form>`;
  const shown = notice ? NOTICES[notice] : undefined;
  const content = html`
    <h1>Task <span class="mono">${task.id}</span> ${badge(task.status)}</h1>
      ${shown ? html`<div class="notice ${shown[0]}" role="status">${shown[1]}</div>` : ""}
      <div class="card">
      <div class="actions">
          ${can.retry ? action("retry", "Retry", `Retry task ${task.id}?`, "primary") : ""}
          ${can.kill
            ? action("kill", "Kill", `Kill task ${task.id}? It will not run again.`, "danger")
            : ""}
          ${action("delete", "Delete", `Delete task ${task.id}? This cannot be undone.`, "danger")}
        </div>
    </div>
      <div class="card">
      <dl class="facts">
          <dt>Queue</dt><dd><a href="${href(
            ctx,
            `/queues/${encodeURIComponent(task.queue)}`,
          )}">${task.queue}</a></dd>
          <dt>State</dt><dd data-field="status">${badge(task.status)}</dd>
          <dt>Attempts</dt><dd>${task.attempts} of ${task.maxAttempts}</dd>
          ${task.progress
            ? html`
              <dt>Progress</dt>
              <dd>${progressView(ctx, task, task.progress)}</dd>
            `
            : ""}
          <dt>Priority</dt><dd>${task.priority}</dd>
          <dt>Created</dt><dd>${timeTag(task.createdAt)} <span class="muted">${formatAgo(
            task.createdAt,
            ctx.now,
          )}</span></dd>
          <dt>Run at</dt><dd>${timeTag(task.runAt)} <span class="muted">${formatAgo(
            task.runAt,
            ctx.now,
          )}</span></dd>
          <dt>Locked</dt><dd>${timeTag(task.lockAt)}</dd>
          <dt>Finished</dt><dd>${timeTag(task.doneAt)}</dd>
          <dt>Worker</dt><dd>${task.lockBy
            ? html`<a href="${href(ctx, "/workers")}" class="mono">${task.lockBy}</a>`
            : html`<span class="muted">–</span>`}</dd>
          ${task.runId
            ? html`
              <dt>Workflow run</dt>
              <dd><a class="mono" href="${href(
                ctx,
                `/runs/${encodeURIComponent(task.runId)}`,
              )}">${task.runId}</a></dd>
            `
            : ""}
          ${task.uniqueKey !== undefined
            ? html`
              <dt>Unique key</dt>
              <dd class="mono" data-field="unique-key">${task.uniqueKey}</dd>
            `
            : ""}
        </dl>
    </div>
      ${task.decodeError ? html`<div class="notice error">${task.decodeError}</div>` : ""}
      ${logView(ctx, task, lines)}
      <h2>Arguments</h2>
      ${shownWhole(ctx, task, "args", task.args, "payload")}
      ${task.lastResult !== undefined && task.lastResult !== null
        ? html`
          <h2>Result</h2>
          ${shownWhole(ctx, task, "result", task.lastResult)}
        `
        : ""}
      ${task.lastError
        ? html`
          <h2>Error</h2>
          <pre data-field="error">${task.lastError.stack ??
            `${task.lastError.name}: ${task.lastError.message}`}</pre>
        `
        : ""}
      ${Object.keys(task.meta).length
        ? html`
          <h2>Meta</h2>
          <pre>${pretty(task.meta)}</pre>
        `
        : ""}
  `;
  return { title: `Task ${task.id}`, section: "none", content };
}
