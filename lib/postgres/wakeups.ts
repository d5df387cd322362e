/**
 * Wake-ups of a PostgreSQL backend: this process's pushes (in memory), and other processes'
 * commits through LISTEN on one dedicated connection (postgres.js keeps it, and listens again
 * after it reconnects). Every insert notifies channel `apalis_tasks` with its queue in the same
 * transaction, so the notification arrives when, and only if, the insert commits.
 *
 * @module
 */
import { ChannelListener } from "./channel.ts";
import type { PostgresConnection } from "./connection.ts";
import { NOTIFY_CHANNEL } from "./schema.ts";

type Listener = () => void;

/** Fetchers to wake, per queue, for pushes of this process and for other processes' commits. */
export class Wakeups {
  #pushed = new Map<string, Set<Listener>>();
  #commits = new Map<Listener, string | undefined>();
  #channel: ChannelListener;

  /** @param pg the connection (LISTEN takes a dedicated connection of its pool) */
  constructor(pg: PostgresConnection) {
    this.#channel = new ChannelListener(
      pg,
      NOTIFY_CHANNEL,
      (queue) => this.#dispatch(queue), // "": commits may have been missed, wake everyone
      () => this.#commits.size > 0,
    );
  }

  /** Calls `listener` when this process pushes to `queue`. */
  onPushed(queue: string, listener: Listener): () => void {
    let set = this.#pushed.get(queue);
    if (!set) this.#pushed.set(queue, set = new Set());
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Wakes this process's fetchers of `queue`. */
  notifyPushed(queue: string): void {
    const set = this.#pushed.get(queue);
    if (!set) return;
    for (const listener of set) listener();
  }

  /**
   * Calls `listener` when a commit of any process pushes to `queue` (any queue when absent);
   * also once whenever LISTEN (re)starts, as notifications may have been missed meanwhile.
   */
  onExternalCommit(listener: Listener, queue?: string): () => void {
    this.#commits.set(listener, queue);
    this.#channel.start();
    return () => void this.#commits.delete(listener);
  }

  #dispatch(queue: string): void {
    for (const [listener, wanted] of [...this.#commits]) {
      if (queue === "" || wanted === undefined || wanted === queue) {
        try {
          listener();
        } catch {
          // a listener's failure must not stop the others
        }
      }
    }
  }

  /** Stops listening. */
  async close(): Promise<void> {
    this.#commits.clear();
    this.#pushed.clear();
    await this.#channel.close();
  }
}
