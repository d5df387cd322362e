import { BusyWaitExpired, DatabaseBusyError, waitOutBusySync } from "../sqlite/busy.ts";
import type { Database } from "../sqlite/types.ts";

/** The schema version this build of the library writes and understands. */
export const SCHEMA_VERSION = 12;

/** The migration that added the started count (`apalis_throughput.started`). */
export const STARTED_COUNT_VERSION = 11;

/** Thrown when a database was written by a newer version of the library. */
export class SchemaVersionError extends Error {
  /**
   * @param path the database file
   * @param found the version recorded in the file
   * @param supported the newest version this library knows
   */
  constructor(path: string, found: number, supported: number) {
    super(
      `Cannot use database '${path}': its schema version is ${found}, but this version of apalis-sqlite supports up to ${supported}; upgrade the library`,
    );
    this.name = "SchemaVersionError";
  }
}

// Workflow bookkeeping, created by migration 2 and again by 5 (which rebuilds the tasks table).
const RUN_STEP_TRIGGER = `CREATE TRIGGER apalis_run_step AFTER UPDATE OF step ON apalis_tasks
     WHEN NEW.run_id IS NOT NULL AND NEW.status <> OLD.status
   BEGIN
     INSERT OR IGNORE INTO apalis_join_parts (run_id, join_key, slot, status, result, error)
     SELECT NEW.run_id, json_extract(NEW.step, '$.join'), json_extract(NEW.step, '$.slot'),
            NEW.status, NEW.last_result, NEW.last_error
     WHERE NEW.status IN ('done','killed') AND json_extract(NEW.step, '$.join') IS NOT NULL;
     INSERT OR IGNORE INTO apalis_tasks (id, queue, status, args, attempts, max_attempts,
       priority, run_at, created_at, meta, backoff, run_id, step, run_seq)
     SELECT j.task_id, j.queue, 'pending', j.args, 0, j.max_attempts, j.priority,
       coalesce(NEW.done_at, 0), coalesce(NEW.done_at, 0), j.meta, j.backoff, j.run_id, j.step,
       (SELECT coalesce(max(run_seq), 0) + 1 FROM apalis_tasks WHERE run_id = j.run_id)
     FROM apalis_joins AS j
     WHERE NEW.status IN ('done','killed') AND j.run_id = NEW.run_id
       AND j.join_key = json_extract(NEW.step, '$.join')
       AND (SELECT count(*) FROM apalis_join_parts AS p
            WHERE p.run_id = j.run_id AND p.join_key = j.join_key) = j.expected
       AND (SELECT status FROM apalis_runs WHERE id = NEW.run_id) = 'running';
     UPDATE apalis_runs SET status = 'failed', done_at = NEW.done_at, error = NEW.last_error
     WHERE NEW.status = 'killed' AND json_extract(NEW.step, '$.item') IS NULL
       AND id = NEW.run_id AND status = 'running';
     UPDATE apalis_runs SET status = 'running', done_at = NULL, error = NULL
     WHERE NEW.status = 'pending' AND OLD.status = 'killed'
       AND id = NEW.run_id AND status = 'failed';
     -- Joins completed while the run had failed (branches that went on) resume with it.
     INSERT OR IGNORE INTO apalis_tasks (id, queue, status, args, attempts, max_attempts,
       priority, run_at, created_at, meta, backoff, run_id, step, run_seq)
     SELECT j.task_id, j.queue, 'pending', j.args, 0, j.max_attempts, j.priority,
       NEW.run_at, NEW.run_at, j.meta, j.backoff, j.run_id, j.step,
       (SELECT coalesce(max(run_seq), 0) + 1 FROM apalis_tasks WHERE run_id = j.run_id)
     FROM apalis_joins AS j
     WHERE NEW.status = 'pending' AND OLD.status = 'killed' AND j.run_id = NEW.run_id
       AND (SELECT count(*) FROM apalis_join_parts AS p
            WHERE p.run_id = j.run_id AND p.join_key = j.join_key) = j.expected
       AND (SELECT status FROM apalis_runs WHERE id = NEW.run_id) = 'running';
   END;`;

// Every table is prefixed: the queue often shares a file with the application's own tables.
const MIGRATIONS: readonly string[] = [
  // 1: tasks, workers
  `CREATE TABLE apalis_tasks (
     id           TEXT PRIMARY KEY,
     queue        TEXT NOT NULL,
     status       TEXT NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending','queued','running','done','failed','killed')),
     args         BLOB NOT NULL,
     attempts     INTEGER NOT NULL DEFAULT 0,
     max_attempts INTEGER NOT NULL DEFAULT 5,
     priority     INTEGER NOT NULL DEFAULT 0,
     run_at       INTEGER NOT NULL,
     created_at   INTEGER NOT NULL,
     lock_by      TEXT,
     lock_at      INTEGER,
     done_at      INTEGER,
     last_result  BLOB,
     last_error   TEXT,
     meta         TEXT,
     backoff      TEXT
   ) WITHOUT ROWID;
   -- Three partial indexes, one per phase of a task's life, so that a push or a state change
   -- touches as few index pages as possible (each page is written to the WAL at commit).
   -- Waiting tasks, in claim order; the claim query stops after LIMIT entries. status rides
   -- along so that counting pending and failed tasks never reads the table.
   CREATE INDEX apalis_tasks_claim ON apalis_tasks (queue, priority DESC, run_at, id, status)
     WHERE status IN ('pending','failed');
   -- Tasks held by a worker: orphan rescue and shutdown release look them up by holder.
   CREATE INDEX apalis_tasks_locked ON apalis_tasks (lock_by, queue, status)
     WHERE status IN ('queued','running');
   -- Tasks that ran: listings newest first (entries carry the id) and counts per state.
   CREATE INDEX apalis_tasks_finished ON apalis_tasks (queue, status, id)
     WHERE status IN ('done','failed','killed');
   CREATE TABLE apalis_workers (
     name        TEXT PRIMARY KEY,
     queue       TEXT NOT NULL,
     instance_id TEXT NOT NULL,
     host        TEXT NOT NULL,
     pid         INTEGER NOT NULL,
     started_at  INTEGER NOT NULL,
     last_seen   INTEGER NOT NULL,
     stopped_at  INTEGER,
     concurrency INTEGER NOT NULL DEFAULT 1
   );`,
  // 2: workflow runs. Every task of a run carries its run id and its position (step, JSON).
  `ALTER TABLE apalis_tasks ADD COLUMN run_id TEXT;
   ALTER TABLE apalis_tasks ADD COLUMN step TEXT;
   -- 1, 2, 3… within a run: the order its tasks were enqueued in (ids need not be in order).
   ALTER TABLE apalis_tasks ADD COLUMN run_seq INTEGER;
   CREATE INDEX apalis_tasks_run ON apalis_tasks (run_id, run_seq) WHERE run_id IS NOT NULL;
   CREATE TABLE apalis_runs (
     id         TEXT PRIMARY KEY,
     queue      TEXT NOT NULL,
     workflow   TEXT,
     status     TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running','done','failed')),
     created_at INTEGER NOT NULL,
     done_at    INTEGER,
     result     BLOB,
     error      TEXT
   ) WITHOUT ROWID;
   -- Fan-in: a join waits for 'expected' parts (one per contributing task, by slot), then
   -- enqueues its continuation task, in the transaction that records the last part.
   CREATE TABLE apalis_joins (
     run_id       TEXT NOT NULL,
     join_key     TEXT NOT NULL,
     expected     INTEGER NOT NULL,
     task_id      TEXT NOT NULL,
     queue        TEXT NOT NULL,
     args         BLOB NOT NULL,
     step         TEXT NOT NULL,
     priority     INTEGER NOT NULL,
     max_attempts INTEGER NOT NULL,
     meta         TEXT,
     backoff      TEXT,
     PRIMARY KEY (run_id, join_key)
   ) WITHOUT ROWID;
   CREATE TABLE apalis_join_parts (
     run_id   TEXT NOT NULL,
     join_key TEXT NOT NULL,
     slot     INTEGER NOT NULL,
     status   TEXT NOT NULL,
     result   BLOB,
     error    TEXT,
     PRIMARY KEY (run_id, join_key, slot)
   ) WITHOUT ROWID;
   -- Bookkeeping of runs, in the transaction of whichever path changed a run task's status (the
   -- worker's ack, orphan rescue, kill() or retry() by hand). It fires only for statements that
   -- set 'step' (those paths do; the hot claim/start/batched-ack statements do not):
   -- 1. A task whose step names a join ({"join": key, "slot": n}) records its outcome as a part
   --    when it ends; the last part enqueues the join's continuation, once.
   -- 2. A step that ends killed fails its run; items of a filterMap ({"item": 1}) are the
   --    exception, their collector reports them.
   -- 3. Retrying a killed step by hand revives its failed run.
   ${RUN_STEP_TRIGGER}`,
  // 3: observability. Outcomes per queue and minute, counted by a trigger in the transaction
  // that records them (so every path counts: batched acks, retries, rescues, kills by hand);
  // and the shape of each run's workflow, for drawing it.
  `CREATE TABLE apalis_throughput (
     queue  TEXT NOT NULL,
     minute INTEGER NOT NULL, -- epoch ms at the start of the minute
     done   INTEGER NOT NULL DEFAULT 0,
     failed INTEGER NOT NULL DEFAULT 0,
     killed INTEGER NOT NULL DEFAULT 0,
     PRIMARY KEY (queue, minute)
   ) WITHOUT ROWID;
   CREATE TRIGGER apalis_count_outcome AFTER UPDATE OF done_at ON apalis_tasks
     WHEN NEW.done_at IS NOT NULL AND NEW.status IN ('done','failed','killed')
       AND (OLD.done_at IS NOT NEW.done_at OR OLD.status IS NOT NEW.status)
   BEGIN
     INSERT INTO apalis_throughput (queue, minute, done, failed, killed)
     VALUES (NEW.queue, NEW.done_at / 60000 * 60000, NEW.status = 'done',
             NEW.status = 'failed', NEW.status = 'killed')
     ON CONFLICT (queue, minute) DO UPDATE SET done = done + excluded.done,
       failed = failed + excluded.failed, killed = killed + excluded.killed;
   END;
   ALTER TABLE apalis_runs ADD COLUMN graph TEXT;`,
  // 4: a cheaper hot path. Outcomes are counted by the statements that record them, once per
  // statement (a trigger ran once per task: a fifth of a drain's time), and held tasks are found
  // by holder alone (counts of held tasks per queue read the few rows themselves).
  `DROP TRIGGER apalis_count_outcome;
   DROP INDEX apalis_tasks_locked;
   CREATE INDEX apalis_tasks_held ON apalis_tasks (lock_by) WHERE status IN ('queued','running');`,
  // 5: a cheaper hot path, again (with the statements of this version, claims and acks run 1.8
  // times as fast). The tasks table becomes a rowid table: a claim or an ack rewrites a row in
  // place by its rowid, where a WITHOUT ROWID table rewrote it in a tree keyed by text, and the
  // indexes carry an 8-byte rowid instead of the id. Status checks avoid IN lists of three or
  // more values, which SQLite evaluates slowly for every row a statement writes (15 % of a drain
  // each): the CHECK constraint becomes a chain of ORs and the finished-tasks index takes the
  // statuses that sort from 'done' to 'killed' (done, failed, killed; the CHECK admits no other
  // status between them).
  `CREATE TABLE apalis_tasks_v5 (
     id           TEXT NOT NULL PRIMARY KEY,
     queue        TEXT NOT NULL,
     status       TEXT NOT NULL DEFAULT 'pending'
                  CHECK (status = 'pending' OR status = 'queued' OR status = 'running'
                         OR status = 'done' OR status = 'failed' OR status = 'killed'),
     args         BLOB NOT NULL,
     attempts     INTEGER NOT NULL DEFAULT 0,
     max_attempts INTEGER NOT NULL DEFAULT 5,
     priority     INTEGER NOT NULL DEFAULT 0,
     run_at       INTEGER NOT NULL,
     created_at   INTEGER NOT NULL,
     lock_by      TEXT,
     lock_at      INTEGER,
     done_at      INTEGER,
     last_result  BLOB,
     last_error   TEXT,
     meta         TEXT,
     backoff      TEXT,
     run_id       TEXT,
     step         TEXT,
     run_seq      INTEGER
   );
   INSERT INTO apalis_tasks_v5 (id, queue, status, args, attempts, max_attempts, priority, run_at,
     created_at, lock_by, lock_at, done_at, last_result, last_error, meta, backoff, run_id, step,
     run_seq)
   SELECT id, queue, status, args, attempts, max_attempts, priority, run_at, created_at, lock_by,
     lock_at, done_at, last_result, last_error, meta, backoff, run_id, step, run_seq
   FROM apalis_tasks ORDER BY id;
   DROP TABLE apalis_tasks;
   ALTER TABLE apalis_tasks_v5 RENAME TO apalis_tasks;
   CREATE INDEX apalis_tasks_claim ON apalis_tasks (queue, priority DESC, run_at, id, status)
     WHERE status IN ('pending','failed');
   CREATE INDEX apalis_tasks_held ON apalis_tasks (lock_by) WHERE status IN ('queued','running');
   CREATE INDEX apalis_tasks_finished ON apalis_tasks (queue, status, id)
     WHERE status BETWEEN 'done' AND 'killed';
   CREATE INDEX apalis_tasks_run ON apalis_tasks (run_id, run_seq) WHERE run_id IS NOT NULL;
   ${RUN_STEP_TRIGGER}`,
  // 6: unique tasks. A unique push records the key it holds in its queue (one row per key, its
  // holder's id and the push's time) in the transaction that inserts the task: the primary key
  // makes concurrent pushes of a key take turns, and the holder's state is read in that same
  // statement (see lib/store/unique.ts). The task keeps its key for display. Deleting a task
  // (by hand or by vacuum) releases the key it holds; a holder that finished or aged out is
  // replaced by the next unique push, so no row blocks forever. Pushes without a key write
  // neither, and the column is NULL for them.
  `ALTER TABLE apalis_tasks ADD COLUMN unique_key TEXT;
   CREATE TABLE apalis_unique (
     queue      TEXT NOT NULL,
     key        TEXT NOT NULL,
     task_id    TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     PRIMARY KEY (queue, key)
   ) WITHOUT ROWID;
   CREATE TRIGGER apalis_unique_release AFTER DELETE ON apalis_tasks
     WHEN OLD.unique_key IS NOT NULL
   BEGIN
     DELETE FROM apalis_unique
     WHERE queue = OLD.queue AND key = OLD.unique_key AND task_id = OLD.id;
   END;`,
  // 7: flow control. A queue's settings (paused, limits, and the rate limit's recent starts),
  // read by primary key at every worker flush; and each task's group for groupConcurrency (NULL
  // for most). Grouped waiting tasks are not indexed apart: a claim with a group limit reads the
  // queue's due tasks in claim order and skips those of full groups.
  `CREATE TABLE apalis_queues (
     queue             TEXT PRIMARY KEY,
     paused            INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
     rate_limit        INTEGER CHECK (rate_limit >= 1),
     rate_per_ms       INTEGER CHECK (rate_per_ms >= 1),
     concurrency       INTEGER CHECK (concurrency >= 1),
     group_concurrency INTEGER CHECK (group_concurrency >= 1),
     -- Starts counted by the rate limit: a JSON array of [bucket, count] (see rate_window.ts).
     rate_window       TEXT,
     updated_at        INTEGER NOT NULL,
     CHECK ((rate_limit IS NULL) = (rate_per_ms IS NULL))
   ) WITHOUT ROWID;
   ALTER TABLE apalis_tasks ADD COLUMN group_key TEXT;`,
  // 8: cron schedules. Workers of a schedule's queue enqueue its due ticks: each moves next_at
  // with a compare-and-set (on next_at and revision) in the transaction that inserts the ticks'
  // tasks, whose ids are fixed per tick (cron:<name>:<tick ms>): one task per tick.
  `CREATE TABLE apalis_schedules (
     name         TEXT NOT NULL PRIMARY KEY,
     queue        TEXT NOT NULL,
     cron         TEXT NOT NULL,
     timezone     TEXT,
     args         BLOB NOT NULL,
     priority     INTEGER NOT NULL DEFAULT 0,
     max_attempts INTEGER NOT NULL DEFAULT 5,
     meta         TEXT,
     catch_up     TEXT NOT NULL DEFAULT 'latest'
                  CHECK (catch_up = 'none' OR catch_up = 'latest' OR catch_up = 'all'),
     paused       INTEGER NOT NULL DEFAULT 0,
     next_at      INTEGER NOT NULL,
     last_at      INTEGER,
     last_task_id TEXT,
     revision     INTEGER NOT NULL DEFAULT 1,
     created_at   INTEGER NOT NULL,
     updated_at   INTEGER NOT NULL
   );
   -- A worker's look for due schedules of its queue: one range of this index.
   CREATE INDEX apalis_schedules_due ON apalis_schedules (queue, paused, next_at);`,
  // 9: retention. The running workers of a queue delete its expired finished tasks, one worker
  // at a time: the one whose name holds the queue's row here ('retention:<queue>') until
  // expires_at, taken with a compare-and-set in each deleting transaction. A run goes whole,
  // once finished: its finished rows are found by queue and finish time. Nothing on the path of
  // pushes, claims and acks changes.
  `CREATE TABLE apalis_leases (
     name       TEXT PRIMARY KEY,
     holder     TEXT NOT NULL,
     expires_at INTEGER NOT NULL
   ) WITHOUT ROWID;
   CREATE INDEX apalis_runs_finished ON apalis_runs (queue, done_at, id)
     WHERE status <> 'running';`,
  // 10: metrics. Outcome counts that never decrease (Prometheus counters): a minute deleted from
  // apalis_throughput (by vacuum, retention or by hand) is added to its queue's totals by a
  // trigger, in the deleting transaction; the counters are the two tables summed. Only deletes
  // fire it: the upserts of the hot path are unchanged.
  `CREATE TABLE apalis_outcome_totals (
     queue  TEXT NOT NULL PRIMARY KEY,
     done   INTEGER NOT NULL DEFAULT 0,
     failed INTEGER NOT NULL DEFAULT 0,
     killed INTEGER NOT NULL DEFAULT 0
   ) WITHOUT ROWID;
   CREATE TRIGGER apalis_fold_outcomes AFTER DELETE ON apalis_throughput
   BEGIN
     INSERT INTO apalis_outcome_totals (queue, done, failed, killed)
     VALUES (OLD.queue, OLD.done, OLD.failed, OLD.killed)
     ON CONFLICT (queue) DO UPDATE SET done = done + excluded.done,
       failed = failed + excluded.failed, killed = killed + excluded.killed;
   END;`,
  // 11: a started count. Workers add the attempts they started to their flush's minute row (in
  // the upsert that counts their outcomes); the totals fold it like the outcomes. Minutes from
  // before count each ended attempt as started, so that started never trails the outcomes.
  `ALTER TABLE apalis_throughput ADD COLUMN started INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE apalis_outcome_totals ADD COLUMN started INTEGER NOT NULL DEFAULT 0;
   UPDATE apalis_throughput SET started = done + failed + killed;
   UPDATE apalis_outcome_totals SET started = done + failed + killed;
   DROP TRIGGER apalis_fold_outcomes;
   CREATE TRIGGER apalis_fold_outcomes AFTER DELETE ON apalis_throughput
   BEGIN
     INSERT INTO apalis_outcome_totals (queue, started, done, failed, killed)
     VALUES (OLD.queue, OLD.started, OLD.done, OLD.failed, OLD.killed)
     ON CONFLICT (queue) DO UPDATE SET started = started + excluded.started,
       done = done + excluded.done, failed = failed + excluded.failed,
       killed = killed + excluded.killed;
   END;`,
  // 12: progress and logs. A handler's last progress is kept with its task (with the attempt
  // that reported it); its log lines go in a table of their own, in order of appending (the
  // rowid), read by task. Both are written by the worker's flush only when there are some; a
  // deleted task takes its lines with it (a trigger). Claims and acks are unchanged.
  `ALTER TABLE apalis_tasks ADD COLUMN progress TEXT;
   ALTER TABLE apalis_tasks ADD COLUMN progress_attempt INTEGER;
   ALTER TABLE apalis_tasks ADD COLUMN progress_at INTEGER;
   CREATE TABLE apalis_task_logs (
     seq     INTEGER PRIMARY KEY,
     task_id TEXT NOT NULL,
     attempt INTEGER NOT NULL,
     at      INTEGER NOT NULL,
     line    TEXT NOT NULL
   );
   CREATE INDEX apalis_task_logs_task ON apalis_task_logs (task_id, seq);
   CREATE TRIGGER apalis_task_logs_delete AFTER DELETE ON apalis_tasks
   BEGIN
     DELETE FROM apalis_task_logs WHERE task_id = OLD.id;
   END;`,
];

/** Reads the schema version of a database: 0 when it was never set up. */
export function schemaVersion(db: Database): number {
  const table = db.get<{ n: number }>(
    "SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table' AND name = 'apalis_schema'",
  );
  if (!table || table.n === 0) return 0;
  return db.get<{ version: number }>("SELECT version FROM apalis_schema")?.version ?? 0;
}

/**
 * Creates or upgrades the queue's tables, to `target` (tests build older files with it).
 * Idempotent; concurrent callers in several processes are safe (each migration runs in one
 * immediate transaction and re-checks the version) and wait for each other, synchronously, for
 * up to `db.busyRetryMs`; past that it throws a `DatabaseBusyError`.
 */
export function migrate(db: Database, target: number = SCHEMA_VERSION): number {
  try {
    return waitOutBusySync(
      (ms) => db.exec(`PRAGMA busy_timeout = ${ms}`),
      db.busyRetryMs,
      () => migrateOnce(db, target),
    );
  } catch (error) {
    if (error instanceof BusyWaitExpired) {
      throw new DatabaseBusyError(db.path, error.waitedMs, { cause: error.cause });
    }
    throw error;
  } finally {
    db.exec(`PRAGMA busy_timeout = ${db.busyTimeoutMs}`);
  }
}

function migrateOnce(db: Database, target: number): number {
  const current = schemaVersion(db);
  if (current > SCHEMA_VERSION) throw new SchemaVersionError(db.path, current, SCHEMA_VERSION);
  if (current >= target) return current;
  return db.transaction(() => {
    db.exec("CREATE TABLE IF NOT EXISTS apalis_schema (version INTEGER NOT NULL)");
    let version = db.get<{ version: number }>("SELECT version FROM apalis_schema")?.version;
    if (version === undefined) {
      db.run("INSERT INTO apalis_schema (version) VALUES (0)");
      version = 0;
    }
    if (version > SCHEMA_VERSION) throw new SchemaVersionError(db.path, version, SCHEMA_VERSION);
    if (version >= target) return version;
    for (let next = version + 1; next <= target; next++) {
      db.exec(MIGRATIONS[next - 1]!);
    }
    db.run("UPDATE apalis_schema SET version = ?", [target]);
    return target;
  });
}
