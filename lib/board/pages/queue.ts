import { TASK_STATUSES } from "../../../mod.ts";
import type { QueuePage } from "../data.ts";
import { badge, count, cutPreview, formatBytes, preview, timeTag } from "../format.ts";
import { formatAgo } from "../../format/duration.ts";
import { html } from "../html.ts";
import { countedNote, href, type Page, type PageContext, pager } from "../layout.ts";
import { formatLimits } from "../../format/limits.ts";

/** One queue's tasks, filtered by state, newest first, one page at a time. */
export function queuePageView(ctx: PageContext, data: QueuePage): Page {
  const base = `/queues/${encodeURIComponent(data.queue)}`;
  const tab = (status: string | null, label: string, n: number) =>
    html`
      <a href="${href(ctx, base)}${status
        ? `?status=${status}`
        : ""}" class="${data.status === status
        ? "here"
        : ""}"
        data-status="${status ?? "all"}">${label} <span class="muted">${count(n)}</span></a>
    `;
  const rows = data.tasks.map((task) =>
    html`
      <tr data-task="${task.id}">
        <td><a class="mono task-link" href="${href(
          ctx,
          `/tasks/${encodeURIComponent(task.id)}`,
        )}">${task.id}</a></td>
        <td>${badge(task.status)}</td>
        <td class="num">${task.attempts}/${task.maxAttempts}</td>
        <td class="num">${task.priority}</td>
        <td>${timeTag(task.runAt)} <span class="muted">${formatAgo(task.runAt, ctx.now)}</span></td>
        <td>${timeTag(task.createdAt)}</td>
        <td class="mono">${task.cut?.args
          ? html`${cutPreview(task.cut.args.text)} <span class="muted">(${
            formatBytes(
              task.cut.args.bytes,
            )
          })</span>`
          : task.decodeError
          ? html`<span class="muted">(cannot decode)</span>`
          : preview(task.args)}</td>
      </tr>
    `
  );
  const { paused, limits } = data.flow;
  const toggle = paused ? "resume" : "pause";
  const question = paused
    ? `Resume queue ${data.queue}? Workers start its tasks again.`
    : `Pause queue ${data.queue}? No worker starts its tasks until it is resumed.`;
  const content = html`
    <h1>Queue <span class="mono">${data.queue}</span></h1>
    ${countedNote(data.countedAt, ctx.now)}
    <div class="card">
      <dl class="facts">
        <dt>State</dt>
        <dd data-field="paused">${paused
          ? html`<span class="badge s-failed">paused</span>`
          : html`<span class="badge s-done">active</span>`}</dd>
        <dt>Limits</dt>
        <dd data-field="limits">${formatLimits(limits)}</dd>
      </dl>
      <div class="actions">
        <form method="post" action="${href(ctx, `${base}/${toggle}`)}" data-confirm="${question}">
          <button type="submit" class="${paused
            ? "primary"
            : "danger"}" data-action="${toggle}">${paused ? "Resume" : "Pause"}</button>
        </form>
      </div>
    </div>
    <div class="tabs">${tab(null, "all", data.counts.total)}${TASK_STATUSES.map((status) =>
      tab(status, status, data.counts[status])
    )}</div>
    <div class="card">
        <table class="tasks">
          <thead><tr><th>Id</th><th>State</th><th class="num">Attempts</th><th class="num">Priority</th><th>Run at</th><th>Created</th><th>Arguments</th></tr></thead>
          <tbody>${rows.length ? rows : html`
            <tr>
              <td colspan="7" class="muted">No tasks${data.status
                ? ` in state ${data.status}`
                : ""}.</td>
            </tr>
          `}</tbody>
        </table>
        ${pager(ctx, base, { status: data.status }, data.page, data.more)}
      </div>
  `;
  return { title: `Queue ${data.queue}`, section: "overview", content };
}
