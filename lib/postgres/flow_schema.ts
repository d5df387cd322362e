/**
 * Flow control on PostgreSQL (schema version 3): a queue's settings (`apalis_queues`: paused,
 * limits, the rate limit's recent starts), each task's group, and the claim of a queue that has
 * settings. `apalis_claim` keeps its plain path and first reads the queue's settings row by
 * primary key; a paused or limited queue's claim goes to `apalis_claim_limited`, which takes the
 * settings row FOR UPDATE, so that claims of the queue from every host take turns and each counts
 * what the previous ones took. Its summary row is of kind 3 (limited) or 4 (paused).
 *
 * @module
 */

// The claim of a paused or limited queue: nothing when paused; otherwise up to p_direct due
// tasks (never ahead), at most concurrency minus the tasks held, at most what the rate window
// allows, and at most group_concurrency held per group.
const CLAIM_LIMITED_FUNCTION = `
CREATE FUNCTION apalis_claim_limited(p_queue text, p_worker text, p_now bigint,
    p_direct integer)
  RETURNS TABLE (kind smallint, id text, args bytea, attempts bigint, max_attempts bigint,
    priority bigint, run_at bigint, meta text, backoff text, run_id text, step text,
    short boolean, next_due bigint)
  LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  s apalis_queues;
  allowed bigint := greatest(p_direct, 0);
  held_by text;
  n bigint;
  got bigint := 0;
  width bigint;
  at_ms bigint;
  counted bigint;
  buckets bigint[];
  counts bigint[];
  reopens bigint;
  bucket bigint;
  group_counts jsonb;
  full_groups text[];
  candidate record;
  first_due bigint;
  summary smallint := 3;
BEGIN
  -- Every claim of the queue takes its turn on the settings row: each one counts what the
  -- claims before it took (READ COMMITTED: each statement below sees what committed before it).
  SELECT * INTO s FROM apalis_queues AS q WHERE q.queue = p_queue FOR UPDATE;
  IF NOT FOUND THEN
    -- The settings went meanwhile: claim again at once, as a plain queue.
    RETURN QUERY SELECT 2::smallint, NULL::text, NULL::bytea, NULL::bigint, NULL::bigint,
      NULL::bigint, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::text,
      p_direct > 0, p_now;
    RETURN;
  END IF;
  IF s.paused THEN
    RETURN QUERY SELECT 4::smallint, NULL::text, NULL::bytea, NULL::bigint, NULL::bigint,
      NULL::bigint, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::text,
      p_direct > 0, p_now + 1000;
    RETURN;
  END IF;
  IF s.concurrency IS NOT NULL THEN
    SELECT count(*) INTO n FROM apalis_tasks AS t
    WHERE t.status IN ('queued','running') AND t.queue = p_queue;
    IF greatest(0, s.concurrency - n) < allowed THEN
      allowed := greatest(0, s.concurrency - n);
      held_by := 'concurrency';
    END IF;
  END IF;
  IF s.rate_limit IS NOT NULL THEN
    -- The rate window (lib/store/rate_window.ts, the same on SQLite): starts counted in buckets
    -- of per_ms / 200, each counting until per_ms after its end.
    width := greatest(1, ceil(s.rate_per_ms / 200.0))::bigint;
    -- Claims take turns here, but their times were read before (at their transactions' start):
    -- one that waited reads earlier than claims counted before it. It is counted, and stamped
    -- (lock_at), at the newest counted bucket's start at the earliest, so that claim times stay
    -- in commit order and no interval of per_ms holds more than rate_limit of them.
    at_ms := p_now;
    IF cardinality(s.rate_buckets) > 0 THEN
      at_ms := greatest(at_ms, s.rate_buckets[cardinality(s.rate_buckets)] * width);
    END IF;
    SELECT coalesce(array_agg(w.b ORDER BY w.i), '{}'), coalesce(array_agg(w.c ORDER BY w.i), '{}'),
      coalesce(sum(w.c), 0)
    INTO buckets, counts, counted
    FROM unnest(s.rate_buckets, s.rate_counts) WITH ORDINALITY AS w(b, c, i)
    WHERE (w.b + 1) * width + s.rate_per_ms > at_ms;
    IF greatest(0, s.rate_limit - counted) < allowed THEN
      allowed := greatest(0, s.rate_limit - counted);
      held_by := 'rate';
      IF allowed = 0 THEN
        reopens := greatest(1, (buckets[1] + 1) * width + s.rate_per_ms - at_ms);
      END IF;
    END IF;
  END IF;
  IF allowed > 0 AND s.group_concurrency IS NULL THEN
    RETURN QUERY WITH picked AS (
      SELECT t.id FROM apalis_tasks AS t
      WHERE t.queue = p_queue AND t.status IN ('pending','failed') AND t.run_at <= p_now
      ORDER BY t.priority DESC, t.run_at, t.id LIMIT allowed FOR UPDATE SKIP LOCKED)
    UPDATE apalis_tasks AS t SET status = 'running', attempts = t.attempts + 1,
      lock_by = p_worker, lock_at = coalesce(at_ms, p_now)
    FROM picked WHERE t.id = picked.id
    RETURNING 0::smallint, t.id, t.args, t.attempts, t.max_attempts, t.priority, t.run_at, t.meta,
      t.backoff, t.run_id, t.step, NULL::boolean, NULL::bigint;
    GET DIAGNOSTICS got = ROW_COUNT;
  ELSIF allowed > 0 THEN
    -- Due tasks in claim order, but for those of full groups: groups full at the start are
    -- filtered out by the scan, those filled by this claim skipped as it goes.
    SELECT coalesce(jsonb_object_agg(g.group_key, g.n), '{}') INTO group_counts
    FROM (SELECT t.group_key, count(*) AS n FROM apalis_tasks AS t
          WHERE t.status IN ('queued','running') AND t.queue = p_queue
            AND t.group_key IS NOT NULL
          GROUP BY t.group_key) AS g;
    SELECT coalesce(array_agg(e.key), '{}') INTO full_groups
    FROM jsonb_each_text(group_counts) AS e WHERE e.value::bigint >= s.group_concurrency;
    FOR candidate IN
      SELECT t.id, t.group_key FROM apalis_tasks AS t
      WHERE t.queue = p_queue AND t.status IN ('pending','failed') AND t.run_at <= p_now
        AND (t.group_key IS NULL OR NOT (t.group_key = ANY (full_groups)))
      ORDER BY t.priority DESC, t.run_at, t.id
    LOOP
      EXIT WHEN got >= allowed;
      IF candidate.group_key IS NOT NULL THEN
        n := coalesce((group_counts ->> candidate.group_key)::bigint, 0);
        CONTINUE WHEN n >= s.group_concurrency;
        group_counts := jsonb_set(group_counts, ARRAY[candidate.group_key], to_jsonb(n + 1));
      END IF;
      RETURN QUERY UPDATE apalis_tasks AS t SET status = 'running', attempts = t.attempts + 1,
        lock_by = p_worker, lock_at = coalesce(at_ms, p_now)
      WHERE t.id = candidate.id AND t.status IN ('pending','failed')
      RETURNING 0::smallint, t.id, t.args, t.attempts, t.max_attempts, t.priority, t.run_at,
        t.meta, t.backoff, t.run_id, t.step, NULL::boolean, NULL::bigint;
      GET DIAGNOSTICS n = ROW_COUNT;
      got := got + n;
    END LOOP;
  END IF;
  IF s.rate_limit IS NOT NULL AND got > 0 THEN
    bucket := at_ms / width;
    IF cardinality(buckets) > 0 AND buckets[cardinality(buckets)] = bucket THEN
      counts[cardinality(counts)] := counts[cardinality(counts)] + got;
    ELSE
      buckets := buckets || bucket;
      counts := counts || got;
    END IF;
    UPDATE apalis_queues SET rate_buckets = buckets, rate_counts = counts
    WHERE queue = p_queue;
  END IF;
  IF p_direct <= 0 OR got >= p_direct THEN
    RETURN QUERY SELECT summary, NULL::text, NULL::bytea, NULL::bigint, NULL::bigint,
      NULL::bigint, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::text, false,
      NULL::bigint;
    RETURN;
  END IF;
  -- Short: a limit held it back, a group was full, or nothing else is due.
  IF held_by = 'rate' AND got = allowed THEN
    first_due := p_now + least(coalesce(reopens, 1), 1000);
  ELSIF held_by = 'concurrency' AND got = allowed THEN
    first_due := p_now + 200;
  ELSE
    SELECT t.run_at INTO first_due FROM apalis_tasks AS t
    WHERE t.queue = p_queue AND t.status IN ('pending','failed')
    ORDER BY t.run_at LIMIT 1;
    IF first_due IS NOT NULL AND first_due <= p_now THEN first_due := p_now + 200; END IF;
  END IF;
  RETURN QUERY SELECT summary, NULL::text, NULL::bytea, NULL::bigint, NULL::bigint,
    NULL::bigint, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::text, true, first_due;
END
$fn$;`;

// apalis_claim of version 1, with the settings lookup at its start.
const CLAIM_FUNCTION_V2 = `
CREATE OR REPLACE FUNCTION apalis_claim(p_queue text, p_worker text, p_now bigint, p_direct integer,
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
  settings apalis_queues;
BEGIN
  -- A queue's settings: one primary-key lookup; a paused or limited queue claims elsewhere.
  SELECT * INTO settings FROM apalis_queues AS q WHERE q.queue = p_queue;
  IF FOUND AND (settings.paused OR settings.rate_limit IS NOT NULL
                OR settings.concurrency IS NOT NULL OR settings.group_concurrency IS NOT NULL) THEN
    RETURN QUERY SELECT * FROM apalis_claim_limited(p_queue, p_worker, p_now, p_direct);
    RETURN;
  END IF;
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

/** Migration 2: flow control. */
export const FLOW_CONTROL_MIGRATION: string = `
  CREATE TABLE apalis_queues (
    queue             text COLLATE "C" PRIMARY KEY,
    paused            boolean NOT NULL DEFAULT false,
    rate_limit        bigint CHECK (rate_limit >= 1),
    rate_per_ms       bigint CHECK (rate_per_ms >= 1),
    concurrency       bigint CHECK (concurrency >= 1),
    group_concurrency bigint CHECK (group_concurrency >= 1),
    -- The rate limit's counted starts: bucket numbers and their counts (see rate_window.ts).
    rate_buckets      bigint[] NOT NULL DEFAULT '{}',
    rate_counts       bigint[] NOT NULL DEFAULT '{}',
    updated_at        bigint NOT NULL,
    CHECK ((rate_limit IS NULL) = (rate_per_ms IS NULL))
  );
  ALTER TABLE apalis_tasks ADD COLUMN group_key text COLLATE "C";
  ${CLAIM_LIMITED_FUNCTION}
  ${CLAIM_FUNCTION_V2}`;
