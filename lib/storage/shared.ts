import { openDatabase } from "../sqlite/open.ts";
import type { Database, OpenDatabaseOptions } from "../sqlite/types.ts";
import type { ClaimedRow, SharedWant } from "../backend/types.ts";
import { Config } from "./config.ts";
import { describeValue } from "./error_text.ts";
import { SqliteStorage, type SqliteStorageOptions } from "./sqlite_storage.ts";

/** A worker of a shared queue, as the shared fetcher sees it. */
export interface SharedMember {
  queue: string;
  worker: string;
  /** How many tasks another worker's claim should take for it now (0 unless it is idle). */
  wants(): number;
  /** Takes tasks another member's claim took for it (already committed as `queued`). */
  deliver(rows: ClaimedRow[]): void;
}

/** Thrown when a queue is registered twice on one shared storage, or gets a second worker. */
export class SharedQueueError extends Error {
  /** @param message what was refused and why */
  constructor(message: string) {
    super(message);
    this.name = "SharedQueueError";
  }
}

/**
 * The one fetcher of a {@linkcode SharedSqliteStorage}: whichever of its workers writes claims,
 * besides its own tasks, for every other registered queue whose worker is idle, in one
 * statement, and routes each task to its queue's worker.
 */
export class SharedFetcher {
  #members = new Map<string, SharedMember>();
  /** How many claim statements ran for other workers (each one for every queue that wanted). */
  claims = 0;
  /** How many of them returned tasks for more than one queue. */
  sharedClaims = 0;

  /** Adds a worker for its queue; returns the function that removes it. */
  join(member: SharedMember): () => void {
    const existing = this.#members.get(member.queue);
    if (existing) {
      throw new SharedQueueError(
        `Cannot run worker '${member.worker}' on shared queue '${member.queue}': worker '${existing.worker}' already runs it (one worker per shared queue; raise its concurrency)`,
      );
    }
    this.#members.set(member.queue, member);
    return () => {
      if (this.#members.get(member.queue) === member) this.#members.delete(member.queue);
    };
  }

  /**
   * What every other member wants claimed for it now (the free slots of an idle one), for the
   * flush of `self`'s worker to claim in its transaction, into `queued` under each one's worker.
   */
  wants(self: string): SharedWant[] {
    const wants: SharedWant[] = [];
    for (const member of this.#members.values()) {
      if (member.queue === self) continue;
      const limit = member.wants();
      if (limit > 0) wants.push({ queue: member.queue, worker: member.worker, limit });
    }
    if (wants.length > 0) this.claims++;
    return wants;
  }

  /** Hands claimed tasks to their queues' workers. */
  deliver(byQueue: ReadonlyMap<string, ClaimedRow[]>, except: string): void {
    if (byQueue.size > 1) this.sharedClaims++;
    for (const [queue, rows] of byQueue) {
      if (queue !== except) this.#members.get(queue)?.deliver(rows);
    }
  }
}

/**
 * Many job types over one connection: `makeShared<T>(queue)` gives a storage per type, and
 * their workers share one fetcher (a worker's write also claims, in one statement, for the
 * other queues' idle workers, and routes those tasks to them). The seed's `SharedSqliteStorage`.
 *
 * @example Usage
 * ```ts
 * import { SharedSqliteStorage, SqliteStorage } from "@apalis/sqlite";
 *
 * const store = new SharedSqliteStorage(":memory:");
 * SqliteStorage.setup(store.db);
 * const emails = store.makeShared<{ to: string }>("email");
 * const numbers = store.makeShared<number>("numbers");
 * await emails.push({ to: "ada@example.com" });
 * await numbers.push(99);
 * store.db.close();
 * ```
 */
export class SharedSqliteStorage {
  /** The one connection every shared storage uses. */
  readonly db: Database;
  /** The fetcher their workers share. */
  readonly fetcher: SharedFetcher = new SharedFetcher();
  #options: SqliteStorageOptions;
  #queues = new Set<string>();

  /**
   * @param db a database path (opened here) or an open `Database`
   * @param options codec, clock, and open options when a path is given
   */
  constructor(db: string | Database, options: SqliteStorageOptions & OpenDatabaseOptions = {}) {
    this.db = typeof db === "string" ? openDatabase(db, options) : db;
    this.#options = options;
  }

  /** The registered queues. */
  get queues(): string[] {
    return [...this.#queues];
  }

  /** A storage for one job type's queue (a name or a `Config`); a queue can be registered once. */
  makeShared<T>(queue: string | Config): SqliteStorage<T> {
    if (typeof queue !== "string" && !(queue instanceof Config)) {
      throw new TypeError(
        `Cannot make a shared storage as 'queue' must be a queue name or a Config (one queue per job type, e.g. makeShared<Email>("email")): current value is ${
          describeValue(queue)
        }`,
      );
    }
    const config = typeof queue === "string" ? new Config(queue) : queue;
    if (this.#queues.has(config.queue)) {
      throw new SharedQueueError(
        `Cannot make a shared storage for queue '${config.queue}': it is registered already`,
      );
    }
    this.#queues.add(config.queue);
    return new SqliteStorage<T>(this.db, config, { ...this.#options, shared: this.fetcher });
  }
}
