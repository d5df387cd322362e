import type { WorkerInfo } from "../../../mod.ts";
import { badge, timeTag } from "../format.ts";
import { formatAgo } from "../../format/duration.ts";
import { html } from "../html.ts";
import { href, type Page, type PageContext } from "../layout.ts";

/** Registered workers: name, queue, host, started, last heartbeat, alive or not. */
export function workersPage(ctx: PageContext, workers: WorkerInfo[]): Page {
  const rows = workers.map((worker) =>
    html`
      <tr data-worker="${worker.name}">
        <td class="mono">${worker.name}</td>
        <td><a href="${href(ctx, `/queues/${encodeURIComponent(worker.queue)}`)}">${worker
          .queue}</a></td>
        <td>${worker.alive
          ? badge("alive")
          : badge(worker.stoppedAt !== null ? "stopped" : "dead")}</td>
        <td class="mono">${worker.host}:${worker.pid}</td>
        <td class="num">${worker.concurrency}</td>
        <td>${timeTag(worker.startedAt)}</td>
        <td>${timeTag(worker.lastSeen)} <span class="muted">${formatAgo(
          worker.lastSeen,
          ctx.now,
        )}</span></td>
        <td>${timeTag(worker.stoppedAt)}</td>
      </tr>
    `
  );
  const content = html`
    <h1>Workers</h1>
    <div class="card">
      <table class="workers">
        <thead>
          <tr>
            <th>Name</th>
            <th>Queue</th>
            <th>State</th>
            <th>Host:pid</th>
            <th class="num">Concurrency</th>
            <th>Started</th>
            <th>Last heartbeat</th>
            <th>Stopped</th>
          </tr>
        </thead>
        <tbody>${rows.length ? rows : html`
          <tr>
            <td colspan="8" class="muted">No workers have registered.</td>
          </tr>
        `}</tbody>
      </table>
    </div>
  `;
  return { title: "Workers", section: "workers", content };
}
