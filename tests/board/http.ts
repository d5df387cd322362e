/**
 * Real HTTP for board tests: a board served on a free port, and requests written by hand over
 * TCP, so a test can send any `Host` header (`fetch` always sends the URL's own).
 *
 * @module
 */
import type { Database } from "../../mod.ts";
import { serveBoard, type ServeBoardOptions } from "../../board.ts";

/** A board served by `serveBoard` on a free port until disposed. */
export interface ServedBoard extends AsyncDisposable {
  /** The address it listens on, as `serveBoard` reported it. */
  hostname: string;
  port: number;
}

/** Serves `db` on `hostname` (default 127.0.0.1) and a free port. */
export async function serveOnFreePort(
  db: Database,
  options: ServeBoardOptions = {},
): Promise<ServedBoard> {
  const stop = new AbortController();
  const { promise: listening, resolve, reject } = Promise.withResolvers<
    { hostname: string; port: number }
  >();
  const served = serveBoard(db, {
    hostname: "127.0.0.1",
    ...options,
    port: 0,
    signal: stop.signal,
    onListen: resolve,
  });
  served.catch(reject);
  const address = await listening;
  return {
    ...address,
    async [Symbol.asyncDispose]() {
      stop.abort();
      await served;
    },
  };
}

/** What came back. */
export interface RawResponse {
  status: number;
  headers: Headers;
  body: string;
}

/** One HTTP/1.1 request written by hand: `host` goes into the `Host` header as given. */
export async function rawRequest(
  address: { hostname: string; port: number },
  request: {
    host: string;
    path?: string;
    method?: string;
    headers?: Record<string, string>;
    body?: string;
  },
): Promise<RawResponse> {
  const { host, path = "/", method = "GET", headers = {}, body } = request;
  const conn = await Deno.connect({ hostname: address.hostname, port: address.port });
  try {
    const lines = [`${method} ${path} HTTP/1.1`, `Host: ${host}`, "Connection: close"];
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    const bytes = new TextEncoder().encode(body ?? "");
    if (body !== undefined) lines.push(`Content-Length: ${bytes.length}`);
    const head = new TextEncoder().encode(`${lines.join("\r\n")}\r\n\r\n`);
    await conn.write(head);
    if (bytes.length) await conn.write(bytes);
    const response = await new Response(conn.readable).text();
    const end = response.indexOf("\r\n\r\n");
    const [statusLine, ...headerLines] = response.slice(0, end).split("\r\n");
    const parsed = new Headers();
    for (const line of headerLines) {
      const colon = line.indexOf(":");
      parsed.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
    return {
      status: Number(statusLine!.split(" ")[1]),
      headers: parsed,
      body: response.slice(end + 4),
    };
  } finally {
    try {
      conn.close();
    } catch {
      // already closed by reading its stream to the end
    }
  }
}
