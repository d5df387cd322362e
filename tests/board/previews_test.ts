import assert from "node:assert/strict";
import { type Codec, JsonCodec, SqliteStorage, Task } from "../../mod.ts";
import { createBoardHandler } from "../../board.ts";
import { tempDatabase } from "../_helpers.ts";

const TASKS = 500;
const PAYLOAD_CHARS = 1_000_000;

/** JSON, adding up the bytes it decodes. */
function measuringJson(): Codec & { decodedBytes: number } {
  const codec = {
    ...JsonCodec,
    name: "measuring-json",
    decodedBytes: 0,
    decode(bytes: Uint8Array) {
      codec.decodedBytes += bytes.length;
      return JsonCodec.decode(bytes);
    },
  };
  return codec;
}

Deno.test("createBoardHandler() lists 500 tasks of 1 MB in small pages and responses (previews), and still gives a task's whole payload", async () => {
  await using temp = await tempDatabase();
  const storage = new SqliteStorage<{ n: number; blob: string }>(temp.db, "uploads");
  for (let start = 0; start < TASKS; start += 50) {
    const chunk = Array.from(
      { length: 50 },
      (_, i) => new Task({ n: start + i, blob: `${start + i}:`.padEnd(PAYLOAD_CHARS, "x") }),
    );
    await storage.pushAll(chunk);
  }
  const [newest] = await storage.listTasks({ queue: "uploads", pageSize: 1 });
  const codec = measuringJson();
  const board = createBoardHandler(temp.db, { codec });
  const get = (path: string) => board(new Request(`http://localhost${path}`));

  // The queue page: 25 rows, each a one-line preview and the payload's size.
  const page = await get("/queues/uploads");
  assert.equal(page.status, 200);
  const html = await page.text();
  assert.ok(html.length < 64 * 1024, `the queue page has ${html.length} characters`);
  assert.equal(html.match(/<tr data-task=/g)?.length, 25);
  assert.match(html, /\{&quot;n&quot;:499,&quot;blob&quot;:&quot;499:xxxx[^<]*…/);
  assert.match(html, /1\.0 MB/);
  assert.ok(codec.decodedBytes < 25 * 1024, `the page decoded ${codec.decodedBytes} bytes`);

  // The API's largest page: every task, none whole, each with a preview and its size.
  const listed = await get(`/api/queues/uploads/tasks?pageSize=${TASKS}`);
  assert.equal(listed.status, 200);
  const body = await listed.text();
  assert.ok(body.length < 2 * 1024 * 1024, `the API listing has ${body.length} characters`);
  const { tasks } = JSON.parse(body);
  assert.equal(tasks.length, TASKS);
  for (const task of tasks) {
    assert.equal(task.args, undefined);
    assert.ok(task.cut.args.bytes > PAYLOAD_CHARS, JSON.stringify(task.cut.args.bytes));
    assert.ok(task.cut.args.text.length <= 1024);
  }
  assert.match(tasks[0].cut.args.text, /^\{"n":499,"blob":"499:xxx/);

  // One task: the API gives it whole; its page shows the start and links to the whole.
  const whole = await (await get(`/api/tasks/${newest!.id}`)).json();
  assert.equal(whole.args.blob.length, PAYLOAD_CHARS);
  assert.equal(whole.args.n, 499);
  const taskPage = await (await get(`/tasks/${newest!.id}`)).text();
  assert.match(taskPage, /&quot;blob&quot;: &quot;499:xxxx/);
  assert.match(taskPage, new RegExp(`href="/api/tasks/${newest!.id}"`));
});
