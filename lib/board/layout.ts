import { type Html, html, type HtmlValue } from "./html.ts";
import { formatAgo } from "../format/duration.ts";

/** What every page needs to know about where and when it is drawn. */
export interface PageContext {
  /** Where the board is mounted (`""` at the root, else like `/board`). */
  base: string;
  /** The time the data was read. */
  now: number;
  /** Whether a token protects the board (then a logout button is shown). */
  protected: boolean;
  /** How often pages refresh their data, in ms (0: never). */
  refreshMs: number;
  /** The database file, shown in the footer. */
  dbPath: string;
}

/** A page: its title, which nav item it belongs to, and the content of `<main>`. */
export interface Page {
  title: string;
  section: "overview" | "workers" | "runs" | "schedules" | "none";
  content: Html;
  status?: number;
  /** Leave out navigation and search (the login page). */
  bare?: boolean;
  /** Nothing to refresh (messages, the login form): no live updates. */
  still?: boolean;
}

/** A path inside the board, with the mount prefix. */
export function href(ctx: PageContext, path: string): string {
  return `${ctx.base}${path}`;
}

/** The whole document around a page's content. */
export function layout(ctx: PageContext, page: Page): Html {
  const nav = (section: Page["section"], path: string, label: string): Html =>
    html`<a href="${href(ctx, path)}" class="${
      page.section === section ? "here" : ""
    }">${label}</a>`;
  // A message or the login form has no data to refresh (and a refresh would wipe what is typed,
  // or re-request the URL of a failed POST).
  const live = page.still ? 0 : ctx.refreshMs;
  return html`
    <!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>${page.title} · apalis board</title>
        <link rel="icon" href="data:,">
        <link rel="stylesheet" href="${href(ctx, "/assets/board.css")}">
        <script src="${href(ctx, "/assets/board.js")}" defer></script>
      </head>
      <body data-refresh-ms="${live}">
        <header>
              <a class="brand" href="${href(ctx, "/")}">apalis board</a>
              ${page.bare ? "" : html`
                <nav>${nav("overview", "/", "Overview")}${nav(
                  "workers",
                  "/workers",
                  "Workers",
                )}${nav(
                  "runs",
                  "/runs",
                  "Workflow runs",
                )}${nav(
                  "schedules",
                  "/schedules",
                  "Schedules",
                )}</nav>
                    <form class="search" action="${href(ctx, "/tasks")}" method="get" role="search">
                  <input name="id" placeholder="Find a task by id" aria-label="Task id" required>
                  <button type="submit">Find</button>
                </form>
                    ${ctx.protected
                      ? html`<form action="${
                        href(ctx, "/logout")
                      }" method="post"><button type="submit">Log out</button></form>`
                      : ""}
              `}
            </header>
        <main id="main">${page.content}</main>
        <footer>
              <span class="mono">${ctx.dbPath}</span>
              <span id="refreshed"></span>
              ${live > 0
                ? html`<button id="pause" type="button" aria-pressed="false">Pause live updates</button>`
                : ""}
                </footer>
      </body>
    </html>
  `;
}

/** A page's links to the previous and next page of a listing. */
export function pager(
  ctx: PageContext,
  path: string,
  params: Record<string, string | null>,
  page: number,
  more: boolean,
): Html {
  const link = (to: number, label: string): Html => {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) if (value) query.set(key, value);
    if (to > 1) query.set("page", String(to));
    const search = query.toString();
    return html`<a href="${href(ctx, path)}${search ? `?${search}` : ""}" rel="${
      to < page ? "prev" : "next"
    }">${label}</a>`;
  };
  const parts: HtmlValue[] = [];
  if (page > 1) parts.push(link(page - 1, "← Newer"));
  parts.push(html`<span class="muted">page ${page}</span>`);
  if (more) parts.push(link(page + 1, "Older →"));
  return html`<div class="pager">${parts}</div>`;
}

/**
 * Says how old a page's counts are when a recent count was reused (counting big queues is slow;
 * see `CostlyReads`); nothing when they were read for this page.
 */
export function countedNote(countedAt: number, now: number): Html | "" {
  if (now - countedAt < 1000) return "";
  return html`
    <p class="muted"
      data-counted-at="${countedAt}">Counted ${formatAgo(
        countedAt,
        now,
      )}: counting these tasks takes a while, so the board reuses a recent count.</p>
  `;
}
