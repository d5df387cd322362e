import type { ScheduleInfo } from "../../../mod.ts";
import { formatAgo } from "../../format/duration.ts";
import { badge, timeTag } from "../format.ts";
import { html } from "../html.ts";
import { href, type Page, type PageContext } from "../layout.ts";

/**
 * Cron schedules: name, queue, expression and zone, the next ticks, the last tick and a link to
 * the task it enqueued.
 */
export function schedulesPage(ctx: PageContext, schedules: ScheduleInfo[]): Page {
  const rows = schedules.map((schedule) =>
    html`
      <tr data-schedule="${schedule.name}">
        <td class="mono">${schedule.name}</td>
        <td><a href="${href(ctx, `/queues/${encodeURIComponent(schedule.queue)}`)}">${schedule
          .queue}</a></td>
        <td class="mono">${schedule.cron}</td>
        <td>${schedule.timezone}</td>
        <td class="next-ticks">${schedule.paused
          ? badge("paused")
          : schedule.upcoming.map((tick) => html`${timeTag(tick)}<br>`)}</td>
        <td>${schedule.lastTick === null ? timeTag(null) : html`${timeTag(schedule.lastTick)}
          <span class="muted">${formatAgo(schedule.lastTick, ctx.now)}</span>`}</td>
        <td>${schedule.lastTaskId === null
          ? html`<span class="muted">–</span>`
          : html`<a class="mono" href="${
            href(ctx, `/tasks/${encodeURIComponent(schedule.lastTaskId)}`)
          }">${schedule.lastTaskId}</a>`}</td>
        <td>${schedule.catchUp}</td>
      </tr>
    `
  );
  const content = html`
    <h1>Schedules</h1>
    <p class="muted">The running workers of each queue enqueue one task per tick.</p>
    <div class="card">
      <table class="schedules">
        <thead>
          <tr>
            <th>Name</th>
            <th>Queue</th>
            <th>Cron</th>
            <th>Zone</th>
            <th>Next runs</th>
            <th>Last tick</th>
            <th>Last task</th>
            <th>Catch-up</th>
          </tr>
        </thead>
        <tbody>${rows.length ? rows : html`
          <tr>
            <td colspan="8" class="muted">No schedules.</td>
          </tr>
        `}</tbody>
      </table>
    </div>
  `;
  return { title: "Schedules", section: "schedules", content };
}
