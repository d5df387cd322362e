/**
 * Kills of running tasks by other processes, heard through LISTEN: a kill of a `running` task
 * notifies channel `apalis_kills` with the task's id in its transaction (`''` for an id too long
 * for a payload: every listener then checks all it runs), so the notice arrives when, and only
 * if, the kill commits (see `ChannelListener`: the connection's one LISTEN connection, shared
 * with the push wake-ups).
 *
 * @module
 */
import { ChannelListener } from "./channel.ts";
import type { PostgresConnection } from "./connection.ts";

/** The channel a kill of a running task notifies, with the task's id as payload. */
export const KILL_CHANNEL = "apalis_kills";

type Listener = (id: string) => void;

/** This connection's listeners for kills committed by any process. */
export class KillNotices {
  #listeners = new Set<Listener>();
  #channel: ChannelListener;

  /** @param pg the connection */
  constructor(pg: PostgresConnection) {
    this.#channel = new ChannelListener(
      pg,
      KILL_CHANNEL,
      (id) => this.#dispatch(id), // "": kills may have been missed, check everything
      () => this.#listeners.size > 0,
    );
  }

  /** Calls `listener` with the id of each running task killed (`''`: any); LISTENs on first use. */
  on(listener: Listener): () => void {
    this.#listeners.add(listener);
    this.#channel.start();
    return () => void this.#listeners.delete(listener);
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
    this.#listeners.clear();
    await this.#channel.close();
  }
}
