import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { Readable } from "node:stream";
import type { AddressInfo } from "node:net";

/** A fetch-style handler, as `createBoardHandler` makes. */
type FetchHandler = (
  request: Request,
  info: { remoteAddr: { hostname: string | undefined } },
) => Promise<Response>;

/**
 * Serves `handler` with `node:http` (on Node, which has no `Deno.serve` or `Bun.serve`) until
 * `signal` aborts; resolves once the server has closed.
 */
export async function serveWithNodeHttp(
  handler: FetchHandler,
  options: {
    port: number;
    hostname: string;
    signal: AbortSignal | undefined;
    onListen: ((address: { hostname: string; port: number }) => void) | undefined;
  },
): Promise<void> {
  const server = createServer((req, res) => {
    void respond(handler, req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  options.onListen?.({ hostname: address.address, port: address.port });
  await new Promise<void>((resolve) => {
    server.once("close", () => resolve());
    const stop = () => {
      server.close();
      server.closeAllConnections(); // the board's pages keep connections alive
    };
    if (options.signal?.aborted) stop();
    else options.signal?.addEventListener("abort", stop, { once: true });
  });
}

async function respond(
  handler: FetchHandler,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  try {
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined) continue;
      for (const item of Array.isArray(value) ? value : [value]) headers.append(name, item);
    }
    const host = req.headers.host ?? "localhost";
    const method = req.method ?? "GET";
    const init: RequestInit & { duplex?: "half" } = { method, headers };
    if (method !== "GET" && method !== "HEAD") {
      init.body = Readable.toWeb(req) as ReadableStream<Uint8Array>;
      init.duplex = "half";
    }
    const request = new Request(`http://${host}${req.url ?? "/"}`, init);
    const response = await handler(request, {
      remoteAddr: { hostname: req.socket.remoteAddress },
    });
    const outgoing: Record<string, string | string[]> = {};
    response.headers.forEach((value, name) => {
      if (name === "set-cookie") return;
      outgoing[name] = value;
    });
    const cookies = response.headers.getSetCookie();
    if (cookies.length > 0) outgoing["set-cookie"] = cookies;
    res.writeHead(response.status, response.statusText, outgoing);
    if (response.body === null || method === "HEAD") {
      res.end();
      return;
    }
    const reader = response.body.getReader();
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) await new Promise((resolve) => res.once("drain", resolve));
    }
    res.end();
  } catch {
    // The handler answers its own errors; this is a broken connection or a malformed request.
    if (!res.headersSent) res.writeHead(400);
    res.end();
  }
}
