import { allowedHostsProblem, serveBoard } from "../../../board.ts";
import { type Command, openForCommand } from "../command.ts";
import { UsageError } from "../errors.ts";
import { expectPositionals, parseDuration, parseOptions } from "../format.ts";

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

/** `apalis board`: serves the web dashboard until Ctrl-C. */
export const boardCommand: Command = {
  name: "board",
  summary: "serve the web dashboard (127.0.0.1:8000 by default)",
  help: `Usage: apalis board [options]

Serves the dashboard: queues with counts and the last hour's throughput, tasks (retry, kill,
delete), workers, and workflow runs drawn as graphs. Pages refresh their data live; every page
is also JSON under /api/ (see docs/dashboard.md), and /metrics serves Prometheus metrics (the
same token as a bearer: authorization: { credentials: TOKEN } in a scrape config). Stops on
Ctrl-C. A SQLite file is opened read-only;
the first retry, kill or delete opens it for writing. With --db postgres://..., the pages read
and the buttons write through one pool of connections; the pages show the URL without its
password.

Options:
  --port N            the port (default 8000; 0 picks a free one)
  --host HOST         the interface (default 127.0.0.1: this machine only)
  --token TOKEN       require this token (Authorization: Bearer, or the login page's
                      cookie) for everything; default $APALIS_BOARD_TOKEN. After 5 wrong
                      tokens an address waits 1s, doubling with each more, up to 60s
  --refresh DURATION  how often pages refresh their data (default 2s; 0 turns it off)
  --session DURATION  how long a login through the login page lasts (default 12h, at
                      most 400d); a restart of the board also ends every login
  --allow-host NAME   also answer requests addressed to NAME (repeatable): the board
                      answers only localhost, 127.0.0.1 and [::1] (and any IP address
                      when --host is not loopback), and refuses other names with 403 so
                      that no other site can reach it through DNS rebinding;
                      .example.com allows that domain and the names under it, * any name

Examples:
  apalis board
  apalis --db postgres://app@db.internal:5432/app board
  APALIS_BOARD_TOKEN=s3cret apalis board --host 0.0.0.0 --port 8080
  APALIS_BOARD_TOKEN=s3cret apalis board --allow-host jobs.example.com   # behind a proxy
`,
  async run({ io, args, globals }) {
    const { values, positionals } = parseOptions("board", args, {
      port: { type: "string" },
      host: { type: "string" },
      token: { type: "string" },
      refresh: { type: "string" },
      session: { type: "string" },
      "allow-host": { type: "string", multiple: true },
    });
    expectPositionals("board", positionals, [], 0);
    const allowedHosts = values["allow-host"] ?? [];
    const hostProblem = allowedHostsProblem(allowedHosts);
    if (hostProblem) throw new UsageError(`option '--allow-host' ${hostProblem}`);
    const port = Number(values.port ?? "8000");
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new UsageError(
        `option '--port' must be an integer from 0 to 65535: current value is '${values.port}'`,
      );
    }
    const hostname = values.host ?? "127.0.0.1";
    const token = values.token ?? io.env.APALIS_BOARD_TOKEN;
    if (token !== undefined && token.trim() === "") {
      throw new UsageError("option '--token' (or $APALIS_BOARD_TOKEN) must not be empty");
    }
    const sessionMs = values.session === undefined
      ? undefined
      : parseDuration(values.session, "--session");
    if (sessionMs !== undefined && token === undefined) {
      throw new UsageError("option '--session' needs a token (--token or $APALIS_BOARD_TOKEN)");
    }
    if (sessionMs !== undefined && (sessionMs < 1000 || sessionMs > 400 * 86_400_000)) {
      throw new UsageError(
        `option '--session' must be from 1s to 400d: current value is '${values.session}'`,
      );
    }
    const refreshMs = values.refresh === undefined
      ? 2000
      : values.refresh === "0"
      ? 0
      : parseDuration(values.refresh, "--refresh");
    const database = await openForCommand(globals, "read-then-write");
    try {
      if (!LOOPBACK.has(hostname) && token === undefined) {
        io.stderr(
          `warning: the board listens on ${hostname} without a token: anyone who can reach it can read and change every queue (set --token or $APALIS_BOARD_TOKEN)\n`,
        );
      }
      if (allowedHosts.some((name) => name.trim() === "*") && token === undefined) {
        io.stderr(
          "warning: --allow-host * without a token: a page on any site can reach this board through DNS rebinding and read and change every queue (set --token or $APALIS_BOARD_TOKEN)\n",
        );
      }
      await serveBoard(database.admin, {
        port,
        hostname,
        refreshMs,
        allowedHosts,
        signal: io.signal,
        ...(token === undefined ? {} : { token }),
        ...(sessionMs === undefined ? {} : { sessionMs }),
        onListen: (address) => {
          const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
          io.stdout(
            `apalis board on http://${host}:${address.port}/ for ${database.location}${
              token === undefined ? "" : " (token required)"
            } — Ctrl-C to stop\n`,
          );
        },
      });
      return 0;
    } finally {
      await database.close();
    }
  },
};
