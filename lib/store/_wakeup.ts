import type { Database } from "../sqlite/types.ts";

type Listener = () => void;

// Per connection, per queue: the fetchers to wake when this process pushes a task.
const listeners = new WeakMap<Database, Map<string, Set<Listener>>>();

/** Registers a fetcher's wake-up; returns the function that removes it. */
export function onPushed(db: Database, queue: string, listener: Listener): () => void {
  let byQueue = listeners.get(db);
  if (!byQueue) listeners.set(db, byQueue = new Map());
  let set = byQueue.get(queue);
  if (!set) byQueue.set(queue, set = new Set());
  set.add(listener);
  return () => set.delete(listener);
}

/** Wakes the fetchers of a queue on this connection. */
export function notifyPushed(db: Database, queue: string): void {
  const set = listeners.get(db)?.get(queue);
  if (!set) return;
  for (const listener of set) listener();
}
