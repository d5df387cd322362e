import { type FSWatcher, watch } from "node:fs";
import type { Database } from "../sqlite/types.ts";
import { dataVersion } from "./changes.ts";

type Listener = () => void;

interface Watch {
  listeners: Set<Listener>;
  seen: number;
  watcher: FSWatcher | undefined;
  timer: ReturnType<typeof setInterval>;
}

/** How often data_version is read when the WAL file can be watched (a safety net) or not. */
const WATCHED_CHECK_MS = 250;
const UNWATCHED_CHECK_MS = 20;

// Per connection: one watcher of other connections' commits, shared by its workers.
const watches = new WeakMap<Database, Watch>();

/**
 * Calls `listener` soon after another connection (another process, the CLI) commits to the
 * file. The WAL file is watched (inotify and friends: no cost while idle), and SQLite's
 * `data_version` tells real commits by others from this connection's own writes; where the file
 * cannot be watched, data_version is polled every 20 ms. Returns the function that unsubscribes.
 */
export function onExternalCommit(db: Database, listener: Listener): () => void {
  let state = watches.get(db);
  if (!state) {
    state = start(db);
    watches.set(db, state);
  }
  state.listeners.add(listener);
  const current = state;
  return () => {
    current.listeners.delete(listener);
    if (current.listeners.size === 0) {
      current.watcher?.close();
      clearInterval(current.timer);
      watches.delete(db);
    }
  };
}

function start(db: Database): Watch {
  const state: Watch = {
    listeners: new Set(),
    seen: dataVersion(db),
    watcher: undefined,
    timer: 0 as unknown as ReturnType<typeof setInterval>,
  };
  const check = () => {
    if (db.closed) return;
    let version: number;
    try {
      version = dataVersion(db);
    } catch {
      return; // a closing or broken connection: the worker's own loop reports it
    }
    if (version === state.seen) return;
    state.seen = version;
    for (const listener of state.listeners) listener();
  };
  if (db.path !== ":memory:" && db.path !== "") {
    try {
      state.watcher = watch(`${db.path}-wal`, { persistent: false }, check);
      state.watcher.on("error", () => {
        state.watcher?.close();
        state.watcher = undefined;
      });
    } catch {
      state.watcher = undefined; // no WAL file yet, or no watch support: poll instead
    }
  }
  state.timer = setInterval(check, state.watcher ? WATCHED_CHECK_MS : UNWATCHED_CHECK_MS);
  return state;
}
