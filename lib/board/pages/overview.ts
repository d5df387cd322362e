import { TASK_STATUSES } from "../../../mod.ts";
import { throughputChart } from "../charts.ts";
import type { Overview } from "../data.ts";
import { count } from "../format.ts";
import { formatDuration } from "../../format/duration.ts";
import { html } from "../html.ts";
import { countedNote, href, type Page, type PageContext } from "../layout.ts";

/** Every queue with its counts, the last hour's outcomes, oldest pending age and workers. */
export function overviewPage(ctx: PageContext, data: Overview): Page {
  const lastHour = data.throughput.reduce(
    (sum, m) => ({ done: sum.done + m.done, failed: sum.failed + m.failed + m.killed }),
    { done: 0, failed: 0 },
  );
  const queueLink = (queue: string, status?: string) =>
    href(ctx, `/queues/${encodeURIComponent(queue)}${status ? `?status=${status}` : ""}`);
  const rows = data.queues.map((queue) =>
    html`<tr data-queue="${queue.name}">
      <td><a href="${queueLink(queue.name)}" class="queue-link">${queue.name}</a></td>
      ${
      TASK_STATUSES.map((status) =>
        html`<td class="num">${
          queue.counts[status] > 0
            ? html`<a href="${queueLink(queue.name, status)}">${count(queue.counts[status])}</a>`
            : html`<span class="muted">0</span>`
        }</td>`
      )
    }
      <td>${throughputChart(queue.throughput, { width: 150, height: 26 })}</td>
      <td class="num">${
      queue.oldestPendingAgeMs === null ? html`<span class="muted">–</span>` : formatDuration(
        queue.oldestPendingAgeMs,
      )
    }</td>
      <td class="num">${queue.workers.alive}${
      queue.workers.dead > 0
        ? html`
          <span class="muted">/ ${queue.workers.dead} dead</span>
        `
        : ""
    }</td>
    </tr>`
  );
  const content = html`
    <h1>Overview</h1>
    ${countedNote(data.countedAt, data.generatedAt)}
    <div class="stats">
        ${TASK_STATUSES.map((status) =>
          html`<div class="stat" data-stat="${status}"><b>${
            count(data.totals[status])
          }</b><span>${status}</span></div>`
        )}
        <div class="stat" data-stat="workers"><b>${data.workers
          .alive}</b><span>workers alive${data.workers.dead
          ? `, ${data.workers.dead} dead`
          : ""}</span></div>
      </div>
    <div class="card">
        <h2>Last hour: ${count(lastHour.done)} done, ${count(lastHour.failed)} failed or killed</h2>
        ${throughputChart(data.throughput, { width: 720, height: 120, labels: true })}
      </div>
    <div class="card">
      <table class="queues">
        <thead>
          <tr><th>Queue</th>${TASK_STATUSES.map((status) =>
            html`<th class="num">${status}</th>`
          )}<th>Last hour</th><th class="num">Oldest pending</th><th class="num">Workers</th></tr>
        </thead>
        <tbody>${rows.length ? rows : html`
          <tr>
            <td colspan="${TASK_STATUSES.length +
              4}" class="muted">No queues yet: push a task (apalis push QUEUE '{…}').</td>
          </tr>
        `}</tbody>
      </table>
    </div>
  `;
  return { title: "Overview", section: "overview", content };
}
