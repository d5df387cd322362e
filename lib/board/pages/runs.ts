import { RUN_STATUSES } from "../../../mod.ts";
import { runGraph } from "../charts.ts";
import type { RunsPage, RunView } from "../data.ts";
import { badge, pretty, preview, timeTag } from "../format.ts";
import { html } from "../html.ts";
import { href, type Page, type PageContext, pager } from "../layout.ts";

/** Workflow runs, newest first, filtered by state. */
export function runsPageView(ctx: PageContext, data: RunsPage): Page {
  const tab = (status: string | null, label: string) => {
    const query = new URLSearchParams();
    if (data.queue) query.set("queue", data.queue);
    if (status) query.set("status", status);
    const search = query.toString();
    return html`<a href="${href(ctx, "/runs")}${search ? `?${search}` : ""}" class="${
      data.status === status ? "here" : ""
    }">${label}</a>`;
  };
  const rows = data.runs.map((run) =>
    html`
      <tr data-run="${run.id}">
        <td><a class="mono" href="${href(ctx, `/runs/${encodeURIComponent(run.id)}`)}">${run
          .id}</a></td>
        <td>${run.workflow ?? html`<span class="muted">not started</span>`}</td>
        <td><a href="${href(ctx, `/queues/${encodeURIComponent(run.queue)}`)}">${run.queue}</a></td>
        <td>${badge(run.status)}</td>
        <td class="num">${run.tasks.done}/${run.tasks.total}${run.tasks.killed
          ? html`
            <span class="muted">(${run.tasks.killed} killed)</span>
          `
          : ""}</td>
        <td>${timeTag(run.createdAt)}</td>
        <td>${timeTag(run.doneAt)}</td>
      </tr>
    `
  );
  const content = html`
    <h1>Workflow runs${data.queue
      ? html`
        in <span class="mono">${data.queue}</span>
      `
      : ""}</h1>
    <div class="tabs">${tab(null, "all")}${RUN_STATUSES.map((s) => tab(s, s))}</div>
    <div class="card">
        <table class="runs">
          <thead><tr><th>Run</th><th>Workflow</th><th>Queue</th><th>State</th><th class="num">Tasks done</th><th>Started</th><th>Ended</th></tr></thead>
          <tbody>${rows.length ? rows : html`
            <tr>
              <td colspan="7" class="muted">No workflow runs.</td>
            </tr>
          `}</tbody>
        </table>
        ${pager(ctx, "/runs", { queue: data.queue, status: data.status }, data.page, data.more)}
      </div>
  `;
  return { title: "Workflow runs", section: "runs", content };
}

/** One run: its graph coloured by state, and every task it ran. */
export function runPage(ctx: PageContext, run: RunView): Page {
  const links: Record<string, string> = {};
  for (const step of run.steps) {
    if (step.node !== null) {
      links[step.node] = href(ctx, `/tasks/${encodeURIComponent(step.taskId)}`);
    }
  }
  const labels = new Map(run.graph?.nodes.map((node) => [node.key, node.label]) ?? []);
  const rows = run.steps.map((step) =>
    html`
      <tr>
        <td><a class="mono" href="${href(ctx, `/tasks/${encodeURIComponent(step.taskId)}`)}">${step
          .taskId}</a></td>
        <td>${step.node === null
          ? html`<span class="muted">(start)</span>`
          : labels.get(step.node) ?? step.node}</td>
        <td>${badge(step.status)}</td>
        <td class="num">${step.attempts}/${step.maxAttempts}</td>
        <td class="mono">${step.error
          ? `${step.error.name}: ${step.error.message}`
          : preview(step.result)}</td>
        <td>${timeTag(step.doneAt)}</td>
      </tr>
    `
  );
  const content = html`
    <h1>Run <span class="mono">${run.id}</span> ${badge(run.status)}</h1>
      <div class="card">
      <dl class="facts">
        <dt>Workflow</dt>
        <dd>${run.workflow ?? html`<span class="muted">not started yet</span>`}</dd>
        <dt>Queue</dt>
        <dd><a href="${href(ctx, `/queues/${encodeURIComponent(run.queue)}`)}">${run.queue}</a></dd>
        <dt>Started</dt>
        <dd>${timeTag(run.createdAt)}</dd>
        <dt>Ended</dt>
        <dd>${timeTag(run.doneAt)}</dd>
      </dl>
    </div>
      <div class="card">
        ${run.graph
          ? html`
            ${runGraph(run.graph, run.nodeStates, links)}
            <div class="legend">
              <span class="lg lg-done">done</span><span class="lg lg-running">running</span>
              <span class="lg lg-pending">waiting to run or retry</span>
              <span class="lg lg-failed">failed</span><span class="lg lg-waiting">not reached</span>
            </div>
          `
          : html`<p class="muted">The graph appears once a worker has run the first step.</p>`}
      </div>
      ${run.status === "done"
        ? html`
          <h2>Result</h2>
          <pre data-field="result">${pretty(run.result)}</pre>
        `
        : ""}
      ${run.error
        ? html`
          <h2>Error</h2>
          <pre data-field="error">${run.error.name}: ${run.error.message}</pre>
        `
        : ""}
      <h2>Tasks</h2>
      <div class="card">
      <table class="steps">
        <thead>
          <tr>
            <th>Task</th>
            <th>Step</th>
            <th>State</th>
            <th class="num">Attempts</th>
            <th>Result or error</th>
            <th>Finished</th>
          </tr>
        </thead>
        <tbody>${rows}</tbody>
      </table>
    </div>
  `;
  return { title: `Run ${run.id}`, section: "runs", content };
}
