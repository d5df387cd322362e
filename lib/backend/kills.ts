import type { TaskKill } from "./types.ts";

type Listener = (kill: TaskKill) => void;

/**
 * This process's listeners for kills by hand on one backend (one connection): a kill reaches the
 * workers of the same process at once, without a query.
 */
export class KillListeners {
  #listeners = new Set<Listener>();

  /** Calls `listener` for each kill; returns the function that removes it. */
  on(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /** Tells every listener about a kill that committed. */
  notify(kill: TaskKill): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(kill);
      } catch {
        // a listener's failure must not stop the others
      }
    }
  }
}
