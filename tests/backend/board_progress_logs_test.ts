/**
 * The board's task page and JSON API show a task's progress and log lines, on both backends,
 * while it runs (the page's live refresh reads them again) and after it finished.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createBoardHandler } from "../../board.ts";
import { WorkerBuilder } from "../../mod.ts";
import { backendTest, gate, start, waitUntil } from "./_suite.ts";

const ORIGIN = "http://localhost:8000";

backendTest(
  "board: the task page and /api/tasks/ID/logs show progress and log lines, live",
  async (db) => {
    const storage = db.storage<number>("board");
    const board = createBoardHandler(db.admin());
    const get = (path: string, headers: HeadersInit = {}) =>
      board(new Request(`${ORIGIN}${path}`, { headers }));
    const id = await storage.push(1);
    const release = gate();
    const worker = new WorkerBuilder("board-worker").backend(storage).handleSignals(false)
      .build(async (_n, ctx) => {
        ctx.log("step <b>one</b>");
        ctx.progress(40);
        await release.promise;
        ctx.log("step two");
        ctx.progress({ rows: 12, of: 12 });
      });
    await using _running = start(worker);
    await waitUntil(async () => (await storage.fetchById(id))?.progress !== undefined, "progress");
    await waitUntil(async () => (await storage.logs(id)).length === 1, "the first line");

    // A refresh of the page (the partial its script asks for) while the task runs.
    const partial = await get(`/tasks/${id}`, { "X-Board-Partial": "1" });
    assert.equal(partial.status, 200);
    const running = await partial.text();
    assert.match(
      running,
      /<progress max="100" value="40"><\/progress> <span\s+data-field="progress">40%<\/span>/,
    );
    assert.match(
      running,
      /<pre\s+class="log"\s+data-field="log">[\d:.]+ {2}step &lt;b&gt;one&lt;\/b&gt;<\/pre>/,
    );
    const live = await (await get(`/tasks/${id}`)).text();
    assert.match(live, /data-refresh-ms="2000"/, "the page refreshes itself");

    const api = await (await get(`/api/tasks/${id}`)).json();
    assert.equal(api.status, "running");
    assert.deepEqual([api.progress.value, api.progress.attempt], [40, 1]);
    const logs = await (await get(`/api/tasks/${id}/logs`)).json();
    assert.equal(logs.finished, false);
    assert.deepEqual(logs.lines.map((line: { line: string }) => line.line), ["step <b>one</b>"]);

    release.open();
    await storage.waitFor(id, { timeoutMs: 20_000 });
    const done = await (await get(`/tasks/${id}`)).text();
    assert.match(
      done,
      /<code\s+data-field="progress">\{&quot;rows&quot;:12,&quot;of&quot;:12\}<\/code>/,
    );
    assert.match(done, /step &lt;b&gt;one&lt;\/b&gt;\n[\d:.]+ {2}step two<\/pre>/);
    const after = logs.lines[0].seq;
    const rest = await (await get(`/api/tasks/${id}/logs?after=${after}&attempt=1`)).json();
    assert.equal(rest.finished, true);
    assert.deepEqual(rest.lines.map((line: { line: string }) => line.line), ["step two"]);

    assert.equal((await get(`/api/tasks/${id}/logs?after=-1`)).status, 400);
    assert.equal((await get(`/api/tasks/${id}/logs?limit=0`)).status, 400);
    assert.equal((await get(`/api/tasks/nope/logs`)).status, 404);
  },
);

backendTest("board: a task without progress or lines shows neither", async (db) => {
  const storage = db.storage<number>("plain");
  const board = createBoardHandler(db.admin());
  const id = await storage.push(1);
  const page = await (await board(new Request(`${ORIGIN}/tasks/${id}`))).text();
  assert.doesNotMatch(page, /data-field="progress"|data-field="log"/);
  const logs = await (await board(new Request(`${ORIGIN}/api/tasks/${id}/logs`))).json();
  assert.deepEqual(logs, { id, status: "pending", finished: false, lines: [] });
});
