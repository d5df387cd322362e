/**
 * Kills of running tasks by other processes, heard through LISTEN: a kill of a `running` task
 * notifies channel `apalis_kills` with the task's id in its transaction (`''` for an id too long
 * for a payload: every listener then checks all it runs), so the notice arrives when, and only
 * if, the kill commits. postgres.js listens on the one dedicated connection it keeps for LISTEN
 * (shared with the push wake-ups), and listens again after it reconnects.
 *
 * @module
 */
import type { PostgresConnection } from "./connection.ts";

/** The channel a kill of a running task notifies, with the task's id as payload. */
export const KILL_CHANNEL = "apalis_kills";

/** How long to wait before trying LISTEN again when the server could not be reached. */
const RELISTEN_MS = 1000;

type Listener = (id: string) => void;

/** This connection's listeners for kills committed by any process. */
export class KillNotices {
  #listeners = new Set<Listener>();
  #pg: PostgresConnection;
  #listening: "no" | "starting" | "yes" = "no";
  #unlisten: (() => Promise<void>) | undefined;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /** @param pg the connection */
  constructor(pg: PostgresConnection) {
    this.#pg = pg;
  }

  /** Calls `listener` with the id of each running task killed (`''`: any); LISTENs on first use. */
  on(listener: Listener): () => void {
    this.#listeners.add(listener);
    this.#listen();
    return () => void this.#listeners.delete(listener);
  }

  #listen(): void {
    if (this.#listening !== "no" || this.#closed || this.#pg.closed) return;
    this.#listening = "starting";
    this.#pg.sql.listen(
      KILL_CHANNEL,
      (payload) => this.#dispatch(payload),
      () => this.#dispatch(""), // (re)listening: kills may have been missed meanwhile
    ).then(
      (result) => {
        this.#listening = "yes";
        this.#unlisten = result.unlisten;
        if (this.#closed) void this.#unlisten();
      },
      () => {
        // The server cannot be reached: the workers' checks go on; try again in a moment.
        this.#listening = "no";
        if (this.#closed || this.#pg.closed || this.#listeners.size === 0) return;
        this.#retry = setTimeout(() => this.#listen(), RELISTEN_MS);
      },
    );
  }

  #dispatch(id: string): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(id);
      } catch {
        // a listener's failure must not stop the others
      }
    }
  }

  /** Stops listening. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#listeners.clear();
    await this.#unlisten?.().catch(() => {});
  }
}
