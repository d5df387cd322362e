/**
 * The queue's tables on PostgreSQL, and their migrations. The data model is SQLite's (same
 * tables and columns; times as BIGINT epoch milliseconds, payloads as BYTEA), with what
 * PostgreSQL needs besides: the claim as a function (one round trip, one bounded index range per
 * priority), the workflow bookkeeping as a PL/pgSQL trigger (SQLite's `apalis_run_step`, with a
 * lock on the run row so that concurrent transactions count a join's parts one after another),
 * and outcome counts spread over 16 rows per queue and minute (`shard`), so that workers'
 * transactions never wait on one counter row.
 *
 * @module
 */
import type { Sql } from "postgres";
import { SchemaVersionError } from "../store/schema.ts";
import { FLOW_CONTROL_MIGRATION } from "./flow_schema.ts";

/** The schema version this build writes and understands on PostgreSQL. */
export const POSTGRES_SCHEMA_VERSION = 8;

/** The migration that added the started count (`apalis_throughput.started`). */
export const POSTGRES_STARTED_COUNT_VERSION = 7;

/** The key of the advisory lock that serialises migrations across processes. */
const MIGRATION_LOCK = 7_361_626_973_001;

/** The channel every insert notifies, with the queue name as payload ('' for any queue). */
export const NOTIFY_CHANNEL = "apalis_tasks";

// What a run's task records when its status changes, as SQLite's trigger `apalis_run_step` does
// (lib/store/schema.ts), step for step and in the same order. It first locks the run's row: every
// path that changes a run's bookkeeping (this trigger, a step's effects) does so, so a join's
// parts recorded by two transactions at once are counted one after the other and the last one
// enqueues the continuation (under READ COMMITTED each statement sees what committed before it).
const RUN_STEP_FUNCTION = `
CREATE FUNCTION apalis_run_step() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  step_json jsonb := NEW.step::jsonb;
  key text := NEW.step::jsonb ->> 'join';
  run_status text;
  queues text[];
  q text;
BEGIN
  SELECT r.status INTO run_status FROM apalis_runs AS r WHERE r.id = NEW.run_id FOR UPDATE;
  -- 1. A task whose step names a join records its outcome as a part when it ends; the last part
  --    enqueues the join's continuation, once.
  IF NEW.status IN ('done','killed') AND key IS NOT NULL THEN
    INSERT INTO apalis_join_parts (run_id, join_key, slot, status, result, error)
    VALUES (NEW.run_id, key, (step_json ->> 'slot')::integer, NEW.status, NEW.last_result,
            NEW.last_error)
    ON CONFLICT DO NOTHING;
    WITH added AS (
      INSERT INTO apalis_tasks (id, queue, status, args, attempts, max_attempts, priority, run_at,
        created_at, meta, backoff, run_id, step, run_seq)
      SELECT j.task_id, j.queue, 'pending', j.args, 0, j.max_attempts, j.priority,
        coalesce(NEW.done_at, 0), coalesce(NEW.done_at, 0), j.meta, j.backoff, j.run_id, j.step,
        (SELECT coalesce(max(t.run_seq), 0) + 1 FROM apalis_tasks AS t WHERE t.run_id = j.run_id)
      FROM apalis_joins AS j
      WHERE j.run_id = NEW.run_id AND j.join_key = key
        AND (SELECT count(*) FROM apalis_join_parts AS p
             WHERE p.run_id = j.run_id AND p.join_key = j.join_key) = j.expected
        AND run_status = 'running'
      ON CONFLICT DO NOTHING
      RETURNING queue
    ) SELECT array_agg(DISTINCT queue) INTO queues FROM added;
    FOREACH q IN ARRAY coalesce(queues, '{}') LOOP PERFORM apalis_notify(q); END LOOP;
  END IF;
  -- 2. A step that ends killed fails its run; items of a filterMap are the exception.
  IF NEW.status = 'killed' AND step_json -> 'item' IS NULL AND run_status = 'running' THEN
    UPDATE apalis_runs SET status = 'failed', done_at = NEW.done_at, error = NEW.last_error
    WHERE id = NEW.run_id AND status = 'running';
    run_status := 'failed';
  END IF;
  -- 3. Retrying a killed step by hand revives its failed run, and the joins completed while it
  --    had failed (branches that went on) resume with it.
  IF NEW.status = 'pending' AND OLD.status = 'killed' AND run_status = 'failed' THEN
    UPDATE apalis_runs SET status = 'running', done_at = NULL, error = NULL
    WHERE id = NEW.run_id AND status = 'failed';
    WITH added AS (
      INSERT INTO apalis_tasks (id, queue, status, args, attempts, max_attempts, priority, run_at,
        created_at, meta, backoff, run_id, step, run_seq)
      SELECT j.task_id, j.queue, 'pending', j.args, 0, j.max_attempts, j.priority,
        NEW.run_at, NEW.run_at, j.meta, j.backoff, j.run_id, j.step,
        (SELECT coalesce(max(t.run_seq), 0) + 1 FROM apalis_tasks AS t WHERE t.run_id = j.run_id)
      FROM apalis_joins AS j
      WHERE j.run_id = NEW.run_id
        AND (SELECT count(*) FROM apalis_join_parts AS p
             WHERE p.run_id = j.run_id AND p.join_key = j.join_key) = j.expected
      ON CONFLICT DO NOTHING
      RETURNING queue
    ) SELECT array_agg(DISTINCT queue) INTO queues FROM added;
    FOREACH q IN ARRAY coalesce(queues, '{}') LOOP PERFORM apalis_notify(q); END LOOP;
  END IF;
  RETURN NULL;
END
$fn$;
-- Fires only for statements that set 'step' (the paths that may end or revive a run's task: an
-- ack of a run's task, orphan rescue, kill and retry by hand), as on SQLite.
CREATE TRIGGER apalis_run_step AFTER UPDATE OF step ON apalis_tasks
  FOR EACH ROW WHEN (NEW.run_id IS NOT NULL AND NEW.status IS DISTINCT FROM OLD.status)
  EXECUTE FUNCTION apalis_run_step();`;

// The claim: due waiting tasks of a queue into 'running' under a worker, in claim order
// (priority DESC, run_at, id), first p_direct of them (any attempt), then, if it got them all,
// p_ahead more that are not on their last attempt. It walks the queue's waiting priorities from
// the highest, each one a bounded range of the claim index (queue, priority, run_at ≤ now) that
// stops at its first task not yet due, so that a million scheduled tasks cost nothing; past 64
// priorities it takes the rest in one ordered scan. Rows locked by another claim are skipped.
// Rows come back with kind 0 (direct) or 1 (ahead), in no particular order, then one row of
// kind 2: next_due, when the direct claim came back short, is the earliest run_at of a waiting
// task (NULL: none waits; short is then true). A priority level is read as the first entry of
// the claim index in priority order (ORDER BY … LIMIT 1), not as max(): with stale statistics
// (right after a bulk insert) the planner read every waiting task's entry for max(), 7 ms at
// 40,000 tasks, at every claim.
const CLAIM_FUNCTION = `
CREATE FUNCTION apalis_claim(p_queue text, p_worker text, p_now bigint, p_direct integer,
    p_ahead integer)
  RETURNS TABLE (kind smallint, id text, args bytea, attempts bigint, max_attempts bigint,
    priority bigint, run_at bigint, meta text, backoff text, run_id text, step text,
    short boolean, next_due bigint)
  LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  phase smallint;
  wanted integer;
  got integer;
  direct_got integer := 0;
  level bigint;
  levels integer;
  due bigint;
  first_due bigint;
BEGIN
  FOR phase IN 0..1 LOOP
    wanted := CASE WHEN phase = 0 THEN p_direct ELSE p_ahead END;
    EXIT WHEN phase = 1 AND direct_got < p_direct;
    CONTINUE WHEN wanted <= 0;
    levels := 0;
    SELECT t.priority INTO level FROM apalis_tasks AS t
    WHERE t.queue = p_queue AND t.status IN ('pending','failed')
    ORDER BY t.priority DESC LIMIT 1;
    WHILE level IS NOT NULL AND wanted > 0 LOOP
      levels := levels + 1;
      IF levels > 64 THEN
        RETURN QUERY WITH picked AS (
          SELECT t.id FROM apalis_tasks AS t
          WHERE t.queue = p_queue AND t.status IN ('pending','failed') AND t.priority <= level
            AND t.run_at <= p_now AND (phase = 0 OR t.attempts + 1 < t.max_attempts)
          ORDER BY t.priority DESC, t.run_at, t.id LIMIT wanted FOR UPDATE SKIP LOCKED)
        UPDATE apalis_tasks AS t SET status = 'running', attempts = t.attempts + 1,
          lock_by = p_worker, lock_at = p_now
        FROM picked WHERE t.id = picked.id
        RETURNING phase::smallint, t.id, t.args, t.attempts, t.max_attempts, t.priority, t.run_at, t.meta,
          t.backoff, t.run_id, t.step, NULL::boolean, NULL::bigint;
        GET DIAGNOSTICS got = ROW_COUNT;
        wanted := wanted - got;
        IF phase = 0 THEN direct_got := direct_got + got; END IF;
        EXIT;
      END IF;
      RETURN QUERY WITH picked AS (
        SELECT t.id FROM apalis_tasks AS t
        WHERE t.queue = p_queue AND t.status IN ('pending','failed') AND t.priority = level
          AND t.run_at <= p_now AND (phase = 0 OR t.attempts + 1 < t.max_attempts)
        ORDER BY t.priority DESC, t.run_at, t.id LIMIT wanted FOR UPDATE SKIP LOCKED)
      UPDATE apalis_tasks AS t SET status = 'running', attempts = t.attempts + 1,
        lock_by = p_worker, lock_at = p_now
      FROM picked WHERE t.id = picked.id
      RETURNING phase::smallint, t.id, t.args, t.attempts, t.max_attempts, t.priority, t.run_at, t.meta,
        t.backoff, t.run_id, t.step, NULL::boolean, NULL::bigint;
      GET DIAGNOSTICS got = ROW_COUNT;
      wanted := wanted - got;
      IF phase = 0 THEN direct_got := direct_got + got; END IF;
      EXIT WHEN wanted <= 0;
      SELECT t.priority INTO level FROM apalis_tasks AS t
      WHERE t.queue = p_queue AND t.status IN ('pending','failed') AND t.priority < level
      ORDER BY t.priority DESC LIMIT 1;
    END LOOP;
  END LOOP;
  IF p_direct > 0 AND direct_got < p_direct THEN
    -- When the next waiting task falls due: the earliest of each priority's first task.
    levels := 0;
    SELECT t.priority INTO level FROM apalis_tasks AS t
    WHERE t.queue = p_queue AND t.status IN ('pending','failed')
    ORDER BY t.priority DESC LIMIT 1;
    WHILE level IS NOT NULL LOOP
      levels := levels + 1;
      IF levels > 64 THEN
        SELECT min(t.run_at) INTO due FROM apalis_tasks AS t
        WHERE t.queue = p_queue AND t.status IN ('pending','failed') AND t.priority <= level;
        first_due := least(first_due, due);
        EXIT;
      END IF;
      SELECT t.run_at INTO due FROM apalis_tasks AS t
      WHERE t.queue = p_queue AND t.status IN ('pending','failed') AND t.priority = level
      ORDER BY t.priority DESC, t.run_at LIMIT 1;
      first_due := least(first_due, due);
      SELECT t.priority INTO level FROM apalis_tasks AS t
      WHERE t.queue = p_queue AND t.status IN ('pending','failed') AND t.priority < level
      ORDER BY t.priority DESC LIMIT 1;
    END LOOP;
    RETURN QUERY SELECT 2::smallint, NULL::text, NULL::bytea, NULL::bigint, NULL::bigint,
      NULL::bigint, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::text, true, first_due;
  ELSE
    RETURN QUERY SELECT 2::smallint, NULL::text, NULL::bytea, NULL::bigint, NULL::bigint,
      NULL::bigint, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::text, false,
      NULL::bigint;
  END IF;
END
$fn$;`;

// The claim of a unique key by the push of task p_task: returns NULL when p_task now holds the
// key (the caller inserts it in the same transaction), or the id of the task that holds it and
// blocks (in one of p_states and, with p_period, pushed less than p_period before p_now; p_now
// NULL: the database's time). A new key is inserted; a held one is locked (FOR UPDATE) before
// its holder is read, and read by a statement of its own: under READ COMMITTED each statement of
// a VOLATILE function takes a new snapshot, which then sees the holder's task, committed with
// the row just locked. (One statement cannot: an ON CONFLICT … WHERE that reads apalis_tasks
// reads them as of before it waited for the row, and would miss a holder committed meanwhile.)
// Under REPEATABLE READ or SERIALIZABLE a key changed since the transaction began fails with
// 40001, to retry. A row deleted between the two steps (its task was deleted) is tried again.
const UNIQUE_CLAIM_FUNCTION = `
CREATE FUNCTION apalis_unique_claim(p_queue text, p_key text, p_task text, p_now bigint,
    p_period bigint, p_states text[])
  RETURNS text LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  now_ms bigint := coalesce(p_now, apalis_now());
  holder text;
  held_since bigint;
BEGIN
  LOOP
    INSERT INTO apalis_unique (queue, key, task_id, created_at)
    VALUES (p_queue, p_key, p_task, now_ms)
    ON CONFLICT DO NOTHING;
    IF FOUND THEN RETURN NULL; END IF;
    SELECT u.task_id, u.created_at INTO holder, held_since FROM apalis_unique AS u
    WHERE u.queue = p_queue AND u.key = p_key FOR UPDATE;
    IF FOUND THEN
      IF EXISTS (SELECT 1 FROM apalis_tasks AS t
                 WHERE t.id = holder AND t.status = ANY(p_states)
                   AND (p_period IS NULL OR held_since + p_period > now_ms)) THEN
        RETURN holder;
      END IF;
      UPDATE apalis_unique SET task_id = p_task, created_at = now_ms
      WHERE queue = p_queue AND key = p_key;
      RETURN NULL;
    END IF;
  END LOOP;
END
$fn$;`;

// Every table is prefixed, as on SQLite: the queue often shares a database with the
// application's own tables. Ids, queue and worker names compare as bytes (COLLATE "C"): ids
// (ULIDs) then sort as they do in JavaScript, and index comparisons skip the locale.
const MIGRATIONS: readonly string[] = [
  // 1: everything SQLite's five migrations built, at once.
  `CREATE FUNCTION apalis_now() RETURNS bigint LANGUAGE sql STABLE
     AS $$ SELECT floor(extract(epoch FROM now()) * 1000)::bigint $$;
   CREATE FUNCTION apalis_shard() RETURNS smallint LANGUAGE sql STABLE
     AS $$ SELECT (pg_backend_pid() % 16)::smallint $$;
   -- NOTIFY payloads are limited to 8000 bytes: a longer queue name wakes every queue.
   CREATE FUNCTION apalis_notify(queue text) RETURNS void LANGUAGE sql VOLATILE
     AS $$ SELECT pg_notify('${NOTIFY_CHANNEL}',
                            CASE WHEN octet_length(queue) <= 4000 THEN queue ELSE '' END) $$;
   CREATE TABLE apalis_tasks (
     id           text COLLATE "C" PRIMARY KEY,
     queue        text COLLATE "C" NOT NULL,
     status       text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending','queued','running','done','failed','killed')),
     args         bytea NOT NULL,
     attempts     bigint NOT NULL DEFAULT 0,
     max_attempts bigint NOT NULL DEFAULT 5,
     priority     bigint NOT NULL DEFAULT 0,
     run_at       bigint NOT NULL,
     created_at   bigint NOT NULL,
     lock_by      text COLLATE "C",
     lock_at      bigint,
     done_at      bigint,
     last_result  bytea,
     last_error   text,
     meta         text,
     backoff      text,
     run_id       text COLLATE "C",
     step         text,
     run_seq      bigint
   );
   -- Waiting tasks in claim order: a claim reads one bounded range per priority.
   CREATE INDEX apalis_tasks_claim ON apalis_tasks (queue, priority DESC, run_at, id)
     WHERE status IN ('pending','failed');
   -- Tasks held by a worker: orphan rescue and shutdown release look them up by holder.
   CREATE INDEX apalis_tasks_held ON apalis_tasks (lock_by) WHERE status IN ('queued','running');
   -- Tasks that ran: listings and counts per state, and vacuum's walk.
   CREATE INDEX apalis_tasks_finished ON apalis_tasks (queue, status, id)
     WHERE status IN ('done','failed','killed');
   CREATE INDEX apalis_tasks_run ON apalis_tasks (run_id, run_seq) WHERE run_id IS NOT NULL;
   CREATE TABLE apalis_workers (
     name        text COLLATE "C" PRIMARY KEY,
     queue       text COLLATE "C" NOT NULL,
     instance_id text NOT NULL,
     host        text NOT NULL,
     pid         bigint NOT NULL,
     started_at  bigint NOT NULL,
     last_seen   bigint NOT NULL,
     stopped_at  bigint,
     concurrency bigint NOT NULL DEFAULT 1
   );
   CREATE TABLE apalis_runs (
     id         text COLLATE "C" PRIMARY KEY,
     queue      text COLLATE "C" NOT NULL,
     workflow   text,
     status     text NOT NULL DEFAULT 'running' CHECK (status IN ('running','done','failed')),
     created_at bigint NOT NULL,
     done_at    bigint,
     result     bytea,
     error      text,
     graph      text
   );
   CREATE TABLE apalis_joins (
     run_id       text COLLATE "C" NOT NULL,
     join_key     text COLLATE "C" NOT NULL,
     expected     bigint NOT NULL,
     task_id      text COLLATE "C" NOT NULL,
     queue        text COLLATE "C" NOT NULL,
     args         bytea NOT NULL,
     step         text NOT NULL,
     priority     bigint NOT NULL,
     max_attempts bigint NOT NULL,
     meta         text,
     backoff      text,
     PRIMARY KEY (run_id, join_key)
   );
   CREATE TABLE apalis_join_parts (
     run_id   text COLLATE "C" NOT NULL,
     join_key text COLLATE "C" NOT NULL,
     slot     bigint NOT NULL,
     status   text NOT NULL,
     result   bytea,
     error    text,
     PRIMARY KEY (run_id, join_key, slot)
   );
   CREATE TABLE apalis_throughput (
     queue  text COLLATE "C" NOT NULL,
     minute bigint NOT NULL, -- epoch ms at the start of the minute
     shard  smallint NOT NULL DEFAULT 0,
     done   bigint NOT NULL DEFAULT 0,
     failed bigint NOT NULL DEFAULT 0,
     killed bigint NOT NULL DEFAULT 0,
     PRIMARY KEY (queue, minute, shard)
   );
   ${RUN_STEP_FUNCTION}
   ${CLAIM_FUNCTION}`,
  // 2: unique tasks (SQLite's migration 6): the key each unique push holds in its queue, claimed
  // by apalis_unique_claim in the push's transaction; a deleted task releases its key.
  `ALTER TABLE apalis_tasks ADD COLUMN unique_key text COLLATE "C";
   CREATE TABLE apalis_unique (
     queue      text COLLATE "C" NOT NULL,
     key        text COLLATE "C" NOT NULL,
     task_id    text COLLATE "C" NOT NULL,
     created_at bigint NOT NULL,
     PRIMARY KEY (queue, key)
   );
   CREATE FUNCTION apalis_unique_release() RETURNS trigger LANGUAGE plpgsql AS $fn$
   BEGIN
     DELETE FROM apalis_unique
     WHERE queue = OLD.queue AND key = OLD.unique_key AND task_id = OLD.id;
     RETURN NULL;
   END
   $fn$;
   CREATE TRIGGER apalis_unique_release AFTER DELETE ON apalis_tasks
     FOR EACH ROW WHEN (OLD.unique_key IS NOT NULL) EXECUTE FUNCTION apalis_unique_release();
   ${UNIQUE_CLAIM_FUNCTION}`,
  // 3: flow control (pause, limits, groups; see flow_schema.ts).
  FLOW_CONTROL_MIGRATION,
  // 4: cron schedules (SQLite's migration 8). Workers of a schedule's queue enqueue its due
  // ticks: each moves next_at with a compare-and-set (on next_at and revision; a concurrent
  // transaction waits on the row, then finds it moved) in the transaction that inserts the ticks'
  // tasks, whose ids are fixed per tick (cron:<name>:<tick ms>): one task per tick.
  `CREATE TABLE apalis_schedules (
     name         text COLLATE "C" PRIMARY KEY,
     queue        text COLLATE "C" NOT NULL,
     cron         text NOT NULL,
     timezone     text,
     args         bytea NOT NULL,
     priority     bigint NOT NULL DEFAULT 0,
     max_attempts bigint NOT NULL DEFAULT 5,
     meta         text,
     catch_up     text NOT NULL DEFAULT 'latest' CHECK (catch_up IN ('none','latest','all')),
     paused       boolean NOT NULL DEFAULT false,
     next_at      bigint NOT NULL,
     last_at      bigint,
     last_task_id text COLLATE "C",
     revision     bigint NOT NULL DEFAULT 1,
     created_at   bigint NOT NULL,
     updated_at   bigint NOT NULL
   );
   CREATE INDEX apalis_schedules_due ON apalis_schedules (queue, paused, next_at);`,
  // 5: retention (SQLite's migration 9). The running workers of a queue delete its expired
  // finished tasks, one worker at a time: the one whose name holds the queue's row here
  // ('retention:<queue>') until expires_at, taken with a compare-and-set that locks the row until
  // the deleting transaction commits. A run goes whole, once finished: its finished rows are found
  // by queue and finish time. Nothing on the path of pushes, claims and acks changes.
  `CREATE TABLE apalis_leases (
     name       text COLLATE "C" PRIMARY KEY,
     holder     text NOT NULL,
     expires_at bigint NOT NULL
   );
   CREATE INDEX apalis_runs_finished ON apalis_runs (queue, done_at, id)
     WHERE status <> 'running';`,
  // 6: metrics (SQLite's migration 10). Outcome counts that never decrease: the minutes a
  // statement deletes from apalis_throughput (vacuum, retention, by hand; not TRUNCATE) are
  // added to their queues' totals by a statement trigger, in the deleting transaction. Only
  // deletes fire it: the hot path's upserts are unchanged.
  `CREATE TABLE apalis_outcome_totals (
     queue  text COLLATE "C" PRIMARY KEY,
     done   bigint NOT NULL DEFAULT 0,
     failed bigint NOT NULL DEFAULT 0,
     killed bigint NOT NULL DEFAULT 0
   );
   CREATE FUNCTION apalis_fold_outcomes() RETURNS trigger LANGUAGE plpgsql AS $fn$
   BEGIN
     INSERT INTO apalis_outcome_totals AS t (queue, done, failed, killed)
     SELECT queue, sum(done), sum(failed), sum(killed) FROM gone GROUP BY queue
     ON CONFLICT (queue) DO UPDATE SET done = t.done + excluded.done,
       failed = t.failed + excluded.failed, killed = t.killed + excluded.killed;
     RETURN NULL;
   END
   $fn$;
   CREATE TRIGGER apalis_fold_outcomes AFTER DELETE ON apalis_throughput
     REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION apalis_fold_outcomes();`,
  // 7: a started count (SQLite's migration 11). Workers add the attempts they started to their
  // connection's minute row in the flush; the totals fold it like the outcomes. Minutes from
  // before count each ended attempt as started, so that started never trails the outcomes.
  `ALTER TABLE apalis_throughput ADD COLUMN started bigint NOT NULL DEFAULT 0;
   ALTER TABLE apalis_outcome_totals ADD COLUMN started bigint NOT NULL DEFAULT 0;
   UPDATE apalis_throughput SET started = done + failed + killed;
   UPDATE apalis_outcome_totals SET started = done + failed + killed;
   CREATE OR REPLACE FUNCTION apalis_fold_outcomes() RETURNS trigger LANGUAGE plpgsql AS $fn$
   BEGIN
     INSERT INTO apalis_outcome_totals AS t (queue, started, done, failed, killed)
     SELECT queue, sum(started), sum(done), sum(failed), sum(killed) FROM gone GROUP BY queue
     ON CONFLICT (queue) DO UPDATE SET started = t.started + excluded.started,
       done = t.done + excluded.done, failed = t.failed + excluded.failed,
       killed = t.killed + excluded.killed;
     RETURN NULL;
   END
   $fn$;`,
  // 8: progress and logs (SQLite's migration 12). A handler's last progress is kept with its
  // task (with the attempt that reported it); its log lines go in a table of their own, in order
  // of appending (an identity), read by task. Both are written by the worker's flush only when
  // there are some; a deleted task takes its lines with it (the foreign key cascades). Claims
  // and acks are unchanged.
  `ALTER TABLE apalis_tasks ADD COLUMN progress text, ADD COLUMN progress_attempt integer,
     ADD COLUMN progress_at bigint;
   CREATE TABLE apalis_task_logs (
     seq     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     task_id text COLLATE "C" NOT NULL REFERENCES apalis_tasks (id) ON DELETE CASCADE,
     attempt integer NOT NULL,
     at      bigint NOT NULL,
     line    text NOT NULL
   );
   CREATE INDEX apalis_task_logs_task ON apalis_task_logs (task_id, seq);`,
];

/** Reads the schema version of the database: 0 when it was never set up. */
export async function postgresSchemaVersion(sql: Sql): Promise<number> {
  const [row] = await sql<{ table: string | null }[]>`
    SELECT to_regclass('apalis_schema')::text AS table`;
  if (!row?.table) return 0;
  const [version] = await sql<{ version: number }[]>`SELECT version FROM apalis_schema`;
  return version?.version ?? 0;
}

/**
 * Creates or upgrades the queue's tables to `target`. Idempotent; processes that run it at once
 * wait for each other on an advisory lock, and each migration commits with its new version, so
 * a crash part way leaves the previous version whole. Refuses a database of a newer version.
 */
export async function migratePostgres(
  sql: Sql,
  location: string,
  target: number = POSTGRES_SCHEMA_VERSION,
): Promise<number> {
  const current = await postgresSchemaVersion(sql);
  if (current > POSTGRES_SCHEMA_VERSION) {
    throw new SchemaVersionError(location, current, POSTGRES_SCHEMA_VERSION);
  }
  if (current >= target) return current;
  return await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK}::bigint)`;
    await tx`CREATE TABLE IF NOT EXISTS apalis_schema (version integer NOT NULL)`;
    let [row] = await tx<{ version: number }[]>`SELECT version FROM apalis_schema`;
    if (!row) {
      await tx`INSERT INTO apalis_schema (version) VALUES (0)`;
      row = { version: 0 };
    }
    if (row.version > POSTGRES_SCHEMA_VERSION) {
      throw new SchemaVersionError(location, row.version, POSTGRES_SCHEMA_VERSION);
    }
    if (row.version >= target) return row.version;
    for (let next = row.version + 1; next <= target; next++) {
      await tx.unsafe(MIGRATIONS[next - 1]!).simple();
    }
    await tx`UPDATE apalis_schema SET version = ${target}`;
    return target;
  });
}
