import type { Admin, Database } from "../../mod.ts";
import { type BoardOptions, createBoardHandler } from "./handler.ts";
import { isLoopbackAddress } from "./hosts.ts";
import { serveWithNodeHttp } from "./node_server.ts";

/** Options of {@linkcode serveBoard}. */
export interface ServeBoardOptions extends BoardOptions {
  /** The port; 0 picks a free one. @default {8000} */
  port?: number;
  /** The interface to listen on. @default {"127.0.0.1"} (this machine only) */
  hostname?: string;
  /** Stops the server when aborted. */
  signal?: AbortSignal;
  /** Called once listening, with the address (the real port when `port` is 0). */
  onListen?: (address: { hostname: string; port: number }) => void;
}

interface DenoRuntime {
  serve(
    options: {
      port: number;
      hostname: string;
      signal?: AbortSignal;
      onListen: (address: { hostname: string; port: number }) => void;
    },
    handler: (
      request: Request,
      info: { remoteAddr: { hostname: string } },
    ) => Response | Promise<Response>,
  ): { finished: Promise<void> };
}

interface BunServer {
  port: number;
  hostname: string;
  requestIP(req: Request): { address: string } | null;
  stop(closeActiveConnections?: boolean): void | Promise<void>;
}

interface BunRuntime {
  serve(options: {
    port: number;
    hostname: string;
    fetch: (req: Request, server: BunServer) => Promise<Response>;
  }): BunServer;
}

/**
 * Serves the board of a database (a SQLite connection, or an `Admin` such as
 * `PostgresStorage.admin(pg)`) until `signal` aborts: with `Deno.serve`, `Bun.serve`, or
 * `node:http` on Node. Listens on 127.0.0.1 unless
 * told otherwise: pass `hostname: "0.0.0.0"` only together with a `token`.
 *
 * It answers only requests addressed to a loopback name (`localhost`, `127.0.0.1`, `[::1]`) or a
 * name in `allowedHosts`, and, when it listens on an address that is not loopback, to any IP
 * address (see `allowIpHosts`); anything else gets 403 (DNS rebinding protection).
 *
 * @example Serve until Ctrl-C
 * ```ts ignore
 * import { openDatabase, SqliteStorage } from "@apalis/sqlite";
 * import { serveBoard } from "@apalis/sqlite/board";
 *
 * const db = openDatabase("jobs.db");
 * SqliteStorage.setup(db);
 * const stop = new AbortController();
 * Deno.addSignalListener("SIGINT", () => stop.abort());
 * await serveBoard(db, { port: 8000, signal: stop.signal });
 * db.close();
 * ```
 */
export async function serveBoard(
  database: Database | Admin,
  options: ServeBoardOptions = {},
): Promise<void> {
  const { port = 8000, hostname = "127.0.0.1", signal, onListen, ...boardOptions } = options;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(
      `Cannot serve the board as 'port' must be an integer from 0 to 65535: current value is ${port}`,
    );
  }
  const handler = createBoardHandler(database, {
    ...boardOptions,
    // Reached from elsewhere by address (`http://192.0.2.7:8000/`): answer addresses, which DNS
    // cannot rebind. Names still need allowedHosts.
    allowIpHosts: boardOptions.allowIpHosts ?? !isLoopbackAddress(hostname),
  });
  if (signal?.aborted) return;
  const bun = (globalThis as { Bun?: BunRuntime }).Bun;
  if (bun) {
    const server = bun.serve({
      port,
      hostname,
      // The client's address, as Deno.serve passes it: failed logins are counted by it.
      fetch: (req, server) =>
        handler(req, { remoteAddr: { hostname: server.requestIP(req)?.address } }),
    });
    onListen?.({ hostname: server.hostname, port: server.port });
    await new Promise<void>((resolve) => {
      if (!signal) return; // serve until the process ends
      signal.addEventListener("abort", async () => {
        await server.stop(true);
        resolve();
      }, { once: true });
    });
    return;
  }
  const deno = (globalThis as { Deno?: DenoRuntime }).Deno;
  if (deno) {
    const server = deno.serve({
      port,
      hostname,
      ...(signal ? { signal } : {}),
      onListen: (address) => onListen?.({ hostname: address.hostname, port: address.port }),
    }, handler);
    await server.finished;
    return;
  }
  await serveWithNodeHttp(handler, { port, hostname, signal, onListen });
}
