/**
 * LISTEN on one channel, for the push wake-ups and the kill notices alike. postgres.js listens on
 * the one dedicated connection it keeps for LISTEN, and listens again after it reconnects.
 *
 * @module
 */
import type { PostgresConnection } from "./connection.ts";

/** How long to wait before trying LISTEN again when the server could not be reached. */
const RELISTEN_MS = 1000;

/**
 * Listens on `channel` from the first {@linkcode ChannelListener.start} on: `onPayload` hears
 * each notification's payload, and `""` whenever listening (re)starts, as notifications may have
 * been missed meanwhile. While the server cannot be reached it tries again every second, as long
 * as `wanted()` says someone still listens.
 */
export class ChannelListener {
  #pg: PostgresConnection;
  #channel: string;
  #onPayload: (payload: string) => void;
  #wanted: () => boolean;
  #listening: "no" | "starting" | "yes" = "no";
  #unlisten: (() => Promise<void>) | undefined;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /**
   * @param pg the connection
   * @param channel the channel to LISTEN on
   * @param onPayload called with each payload (`""` when listening starts again)
   * @param wanted whether anyone still listens (a failed LISTEN is retried only then)
   */
  constructor(
    pg: PostgresConnection,
    channel: string,
    onPayload: (payload: string) => void,
    wanted: () => boolean,
  ) {
    this.#pg = pg;
    this.#channel = channel;
    this.#onPayload = onPayload;
    this.#wanted = wanted;
  }

  /** Starts listening, unless it already does (or is closed). */
  start(): void {
    if (this.#listening !== "no" || this.#closed || this.#pg.closed) return;
    this.#listening = "starting";
    this.#pg.sql.listen(
      this.#channel,
      (payload) => this.#onPayload(payload),
      () => this.#onPayload(""), // (re)listening: notifications may have been missed
    ).then(
      (result) => {
        this.#listening = "yes";
        this.#unlisten = result.unlisten;
        if (this.#closed) void this.#unlisten();
      },
      () => {
        // The server cannot be reached: polls and checks go on; try again in a moment.
        this.#listening = "no";
        if (this.#closed || this.#pg.closed || !this.#wanted()) return;
        this.#retry = setTimeout(() => this.start(), RELISTEN_MS);
      },
    );
  }

  /** Stops listening. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    await this.#unlisten?.().catch(() => {});
  }
}
