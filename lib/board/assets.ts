// The board's stylesheet and script, embedded so the compiled binary needs no files. Served at
// `assets/board.css` and `assets/board.js` (the Content-Security-Policy allows no inline code).

/** The stylesheet. */
export const BOARD_CSS = `:root {
  color-scheme: light dark;
  --bg: #f7f7f8; --fg: #1d1f23; --muted: #6b7280; --card: #fff; --line: #e3e4e8;
  --accent: #3451b2; --done: #1f9d55; --failed: #d97706; --killed: #dc2626;
  --running: #2563eb; --pending: #7c8593; --queued: #7c3aed; --slot: #eef0f3;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
}
@media (prefers-color-scheme: dark) {
  :root { --bg: #15171b; --fg: #e6e7ea; --muted: #9aa1ad; --card: #1d2026; --line: #2c3038;
    --accent: #8ea2ff; --slot: #262a31; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
header { display: flex; gap: 20px; align-items: center; padding: 10px 24px; background: var(--card);
  border-bottom: 1px solid var(--line); flex-wrap: wrap; }
header .brand { font-weight: 700; font-size: 16px; color: var(--fg); }
header nav { display: flex; gap: 14px; }
header nav a.here { font-weight: 600; color: var(--fg); }
header form { margin-left: auto; display: flex; gap: 6px; }
main { padding: 20px 24px; max-width: 1280px; }
footer { padding: 8px 24px 24px; color: var(--muted); font-size: 12px; display: flex; gap: 12px;
  align-items: center; }
h1 { font-size: 20px; margin: 0 0 14px; }
h2 { font-size: 15px; margin: 22px 0 8px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px;
  margin-bottom: 16px; overflow-x: auto; }
.stats { display: flex; gap: 12px; flex-wrap: wrap; margin-bottom: 16px; }
.stat { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px;
  min-width: 110px; }
.stat b { display: block; font-size: 20px; }
.stat span { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:last-child td { border-bottom: 0; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
pre { background: var(--slot); border-radius: 6px; padding: 10px 12px; overflow: auto; max-height: 420px;
  margin: 0; white-space: pre-wrap; word-break: break-word; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 6px 18px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
.muted { color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600;
  color: #fff; background: var(--pending); }
.s-done { background: var(--done); } .s-failed { background: var(--failed); }
.s-killed { background: var(--killed); } .s-running { background: var(--running); }
.s-queued { background: var(--queued); } .s-pending { background: var(--pending); }
.s-alive { background: var(--done); } .s-dead { background: var(--killed); }
.s-stopped { background: var(--pending); } .s-paused { background: var(--failed); }
.tabs { display: flex; gap: 6px; flex-wrap: wrap; margin-bottom: 12px; }
.tabs a { padding: 4px 10px; border: 1px solid var(--line); border-radius: 14px; background: var(--card); }
.tabs a.here { background: var(--accent); color: #fff; border-color: var(--accent); }
.pager { display: flex; gap: 12px; margin-top: 10px; }
.actions { display: flex; gap: 8px; flex-wrap: wrap; }
button { font: inherit; padding: 5px 12px; border-radius: 6px; border: 1px solid var(--line);
  background: var(--card); color: var(--fg); cursor: pointer; }
button.danger { border-color: var(--killed); color: var(--killed); }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
input { font: inherit; padding: 5px 8px; border-radius: 6px; border: 1px solid var(--line);
  background: var(--bg); color: var(--fg); }
.notice { padding: 8px 12px; border-radius: 6px; margin-bottom: 14px; background: var(--slot); }
.notice.error { border-left: 4px solid var(--killed); }
.notice.ok { border-left: 4px solid var(--done); }
svg.chart .bar-slot { fill: var(--slot); }
svg.chart .bar-done { fill: var(--done); }
svg.chart .bar-failed { fill: var(--killed); }
svg.chart .axis { fill: var(--muted); font-size: 10px; }
svg.graph .edge { fill: none; stroke: var(--muted); stroke-width: 1.5; }
svg.graph .arrow { fill: var(--muted); }
svg.graph .node rect { stroke-width: 1.5; fill: var(--card); stroke: var(--pending); }
svg.graph .node text { fill: var(--fg); font-size: 12px; }
svg.graph .n-done rect { fill: color-mix(in srgb, var(--done) 22%, var(--card)); stroke: var(--done); }
svg.graph .n-running rect { fill: color-mix(in srgb, var(--running) 22%, var(--card)); stroke: var(--running); }
svg.graph .n-pending rect { fill: color-mix(in srgb, var(--failed) 18%, var(--card)); stroke: var(--failed); }
svg.graph .n-failed rect { fill: color-mix(in srgb, var(--killed) 22%, var(--card)); stroke: var(--killed); }
svg.graph .n-waiting rect { stroke-dasharray: 4 3; }
.legend { display: flex; gap: 14px; font-size: 12px; color: var(--muted); margin-top: 8px; }
.legend .lg::before { content: ""; display: inline-block; width: 10px; height: 10px; border-radius: 2px;
  margin-right: 5px; vertical-align: -1px; border: 1.5px solid var(--pending); }
.legend .lg-done::before { background: var(--done); border-color: var(--done); }
.legend .lg-running::before { background: var(--running); border-color: var(--running); }
.legend .lg-pending::before { background: var(--failed); border-color: var(--failed); }
.legend .lg-failed::before { background: var(--killed); border-color: var(--killed); }
.legend .lg-waiting::before { border-style: dashed; }
svg.chart.wide { width: 100%; height: auto; max-height: 160px; }
.login { max-width: 360px; margin: 60px auto; }
.login form { display: flex; flex-direction: column; gap: 10px; }
`;

/**
 * The script: asks before write actions (`data-confirm` on a form), and refreshes the page's
 * data in place (the page's own URL, asked for as a partial) every `data-refresh-ms`.
 */
export const BOARD_JS = `"use strict";
(() => {
  const main = document.getElementById("main");
  const body = document.body;
  const every = Number(body.dataset.refreshMs) || 0;
  const stamp = document.getElementById("refreshed");
  const pause = document.getElementById("pause");
  let paused = false;
  let last = null;
  let refreshes = 0;
  document.addEventListener("submit", (event) => {
    const form = event.target;
    const question = form instanceof HTMLFormElement ? form.dataset.confirm : undefined;
    if (question && !window.confirm(question)) event.preventDefault();
  });
  if (pause) {
    pause.addEventListener("click", () => {
      paused = !paused;
      pause.textContent = paused ? "Resume live updates" : "Pause live updates";
      pause.setAttribute("aria-pressed", String(paused));
    });
  }
  async function refresh() {
    if (paused || document.hidden || !main) return;
    try {
      const response = await fetch(location.href, {
        headers: { "X-Board-Partial": "1" },
        credentials: "same-origin",
        cache: "no-store",
      });
      // A login page or an error page is not this page's data: keep what is shown.
      if (!response.ok || response.headers.get("X-Board-Partial") !== "1") return;
      const text = await response.text();
      if (text !== last) {
        last = text;
        main.innerHTML = text;
      }
      refreshes++;
      body.dataset.refreshes = String(refreshes);
      if (stamp) stamp.textContent = "updated " + new Date().toLocaleTimeString();
    } catch {
      if (stamp) stamp.textContent = "cannot reach the board; retrying";
    }
  }
  // Browser timers hold at most 2^31 - 1 ms (longer ones fire at once): wait in chunks.
  const MAX_TIMER_MS = 2147483647;
  function after(ms, fn) {
    if (ms > MAX_TIMER_MS) setTimeout(() => after(ms - MAX_TIMER_MS, fn), MAX_TIMER_MS);
    else setTimeout(fn, ms);
  }
  function tick() {
    after(every, () => {
      tick();
      refresh();
    });
  }
  if (every > 0) tick();
})();
`;
