import { html } from "../html.ts";
import { href, type Page, type PageContext } from "../layout.ts";

/** A page that only says something: not found, an error, a refusal. */
export function messagePage(title: string, message: string): Page {
  return {
    title,
    section: "none",
    content: html`
      <h1>${title}</h1>
      <div class="notice error" role="alert">${message}</div>
    `,
    still: true,
  };
}

/** The login form: one field, the board's token; `problem` says why the last try failed. */
export function loginPage(ctx: PageContext, next: string, problem: string | null): Page {
  const content = html`<div class="card login">
    <h1>Log in</h1>
    ${problem ? html`<div class="notice error" role="alert">${problem}</div>` : ""}
    <form method="post" action="${href(ctx, "/login")}">
      <input type="hidden" name="next" value="${next}">
      <label for="token">Board token</label>
      <input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
      <button type="submit" class="primary">Log in</button>
    </form>
  </div>`;
  return { title: "Log in", section: "none", content, bare: true, still: true };
}
