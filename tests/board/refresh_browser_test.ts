/**
 * The board's live refresh runs in the browser, whose timers also hold at most 2^31 - 1 ms: a
 * refresh of 30 days (`apalis board --refresh 30d`) made Chromium refresh every few
 * milliseconds. In real Chromium (see `browser_test.ts` for when it is ignored).
 *
 * @module
 */
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { serveBoard } from "../../board.ts";
import { SqliteStorage } from "../../mod.ts";
import { tempDatabase } from "../_helpers.ts";

const CHROMIUM = Deno.env.get("APALIS_CHROMIUM") || "/usr/bin/chromium";
const REQUIRED = Deno.env.get("APALIS_BROWSER_TEST") === "required";
const HAS_CHROMIUM = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();
const IGNORE = !HAS_CHROMIUM && !REQUIRED;

/** Serves the board with `refreshMs`, counting the page's live refresh requests. */
async function countRefreshes(refreshMs: number, watchMs: number): Promise<number> {
  await using tmp = await tempDatabase();
  await new SqliteStorage(tmp.db, "email").push({ to: "a@example.com" });
  const stop = new AbortController();
  const { promise: listening, resolve } = Promise.withResolvers<number>();
  const served = serveBoard(tmp.db, {
    refreshMs,
    port: 0,
    signal: stop.signal,
    onListen: ({ port }) => resolve(port),
  });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox"],
  });
  try {
    const port = await listening;
    const page = await browser.newPage();
    let refreshes = 0;
    page.on("request", (request) => {
      if (request.headers()["x-board-partial"] === "1") refreshes++;
    });
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForTimeout(watchMs);
    return refreshes;
  } finally {
    await browser.close();
    stop.abort();
    await served;
  }
}

Deno.test({
  name: `serveBoard() with a refresh of 30 days does not refresh the page in a second${
    IGNORE ? ` (ignored: no Chromium at ${CHROMIUM})` : ""
  }`,
  ignore: IGNORE,
  async fn() {
    assert.ok(HAS_CHROMIUM, `APALIS_BROWSER_TEST=required but there is no Chromium at ${CHROMIUM}`);
    // The same page with a short refresh does refresh: the count below can see refreshes.
    assert.ok(await countRefreshes(100, 1000) >= 2, "a refresh of 100 ms refreshed the page");
    const refreshes = await countRefreshes(30 * 86_400_000, 1000);
    assert.equal(refreshes, 0, `${refreshes} refreshes in a second`);
  },
});
