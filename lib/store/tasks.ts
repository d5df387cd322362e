import type { Database, SqlValue } from "../sqlite/types.ts";
import { OutcomeCounts, throughputAddRows } from "./throughput.ts";

import type {
  ClaimedRow,
  ListedTaskRow,
  NewTaskRow,
  TaskRow,
  TaskStatus,
} from "../backend/types.ts";

export {
  type ClaimedRow,
  type ListedTaskRow,
  type NewTaskRow,
  TASK_STATUSES,
  type TaskRow,
  type TaskStatus,
} from "../backend/types.ts";

// Fewer columns out of a claim is less to convert per row (results and errors of earlier
// attempts can be large, and the worker never reads them). Claims read rows as arrays (cheaper
// than objects by ~1 us a row): `claimedRow` names them, in this order. A shared storage's
// claim, whose rows differ in queue, reads these.
const CLAIM_COLUMNS =
  "id, queue, status, args, attempts, max_attempts, priority, run_at, lock_at, meta, backoff, " +
  "run_id, step";

// A worker's own claim knows the queue, the new status and lock_at of every row it claims, and
// reads only what differs per row (5 % more claims and acks per second than all 13 columns):
// the rowid to mark the row claimed, then the attempt it starts. With text payloads, the
// payload's size as stored comes last.
function ownClaimColumns(textArgs: boolean): string {
  const args = textArgs ? "CAST(args AS TEXT)" : "args";
  return `rowid, id, ${args}, attempts + 1, max_attempts, priority, run_at, meta, backoff, ` +
    `run_id, step${textArgs ? ", length(args)" : ""}`;
}
// What the claim ahead reads of the tasks it looks at (then filters on attempts).
const TASK_RUN_COLUMNS =
  "id, args, attempts, max_attempts, priority, run_at, meta, backoff, run_id, step";

function ownClaimedRow(v: unknown[], queue: string, now: number): ClaimedRow {
  return {
    id: v[1] as string,
    queue,
    status: "running",
    args: v[2] as Uint8Array | string,
    args_bytes: v[11] as number | undefined,
    attempts: v[3] as number,
    max_attempts: v[4] as number,
    priority: v[5] as number,
    run_at: v[6] as number,
    lock_at: now,
    meta: v[7] as string | null,
    backoff: v[8] as string | null,
    run_id: v[9] as string | null,
    step: v[10] as string | null,
  };
}

function claimedRow(v: unknown[]): ClaimedRow {
  return {
    id: v[0] as string,
    queue: v[1] as string,
    status: v[2] as TaskStatus,
    args: v[3] as Uint8Array,
    attempts: v[4] as number,
    max_attempts: v[5] as number,
    priority: v[6] as number,
    run_at: v[7] as number,
    lock_at: v[8] as number | null,
    meta: v[9] as string | null,
    backoff: v[10] as string | null,
    run_id: v[11] as string | null,
    step: v[12] as string | null,
  };
}

/** The outcome of one attempt, as the SQL records it. */
export interface TaskAck {
  id: string;
  /** The task's queue: outcomes are counted per queue. */
  queue: string;
  /** The attempt number the worker ran: fences acks of an attempt that was since rescued. */
  attempt: number;
  status: "done" | "failed" | "killed";
  /** The encoded result: bytes, or text to store as its UTF-8 bytes (a text codec's). */
  result: Uint8Array | string | null;
  error: string | null;
  /** For `failed`: when the retry is due. */
  runAt: number | null;
  doneAt: number;
  /** The task belongs to a workflow run: its ack must reach the run's bookkeeping trigger. */
  inRun?: boolean;
}

const COLUMNS = "id, queue, status, args, attempts, max_attempts, priority, run_at, created_at, " +
  "lock_by, lock_at, done_at, last_result, last_error, meta, backoff, run_id, step, unique_key, " +
  "group_key";
/** A task read by id: with the progress its handler reported. */
const READ_COLUMNS = `${COLUMNS}, progress, progress_attempt, progress_at`;
const INSERT_COLUMNS =
  "id, queue, status, args, attempts, max_attempts, priority, run_at, created_at, meta, backoff, " +
  "run_id, step, group_key, run_seq";
const INSERT_ROW = "(?, ?, 'pending', CAST(? AS BLOB), 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, " +
  "CASE WHEN ? IS NULL THEN NULL ELSE " +
  "(SELECT coalesce(max(run_seq), 0) + 1 FROM apalis_tasks WHERE run_id = ?) END)";
const INSERT_CHUNK = 64; // 16 values a row: stays far below SQLite's limit of bound values

/** The values of a plain row (`PLAIN_COLUMNS`): the first of every insert's. */
function plainValues(row: NewTaskRow, into: SqlValue[]): void {
  into.push(row.id, row.queue, row.args, row.maxAttempts, row.priority, row.runAt, row.createdAt);
}

function insertValues(row: NewTaskRow, into: SqlValue[]): void {
  plainValues(row, into);
  into.push(
    row.meta,
    row.backoff,
    row.runId ?? null,
    row.step ?? null,
    row.groupKey ?? null,
    row.runId ?? null,
    row.runId ?? null,
  );
}

/** Inserts one task. Fails on a duplicate id. */
export function taskInsert(db: Database, row: NewTaskRow): void {
  const values: SqlValue[] = [];
  insertValues(row, values);
  db.run(`INSERT INTO apalis_tasks (${INSERT_COLUMNS}) VALUES ${INSERT_ROW}`, values);
}

/** Inserts one task that holds unique key `key` (see lib/store/unique.ts). */
export function taskInsertUnique(db: Database, row: NewTaskRow, key: string): void {
  const values: SqlValue[] = [];
  insertValues(row, values);
  values.push(key);
  db.run(
    `INSERT INTO apalis_tasks (${INSERT_COLUMNS}, unique_key) VALUES ${
      INSERT_ROW.slice(0, -1)
    }, ?)`,
    values,
  );
}

// Most tasks have no meta, backoff, workflow or group: they bind 7 values instead of 14, and
// skip the run_seq expression.
const PLAIN_COLUMNS = "id, queue, args, max_attempts, priority, run_at, created_at";
const PLAIN_ROW = "(?, ?, CAST(? AS BLOB), ?, ?, ?, ?)";
const PLAIN_CHUNK = 128;

function isPlain(row: NewTaskRow): boolean {
  return row.meta === null && row.backoff === null && (row.runId ?? null) === null &&
    (row.step ?? null) === null && (row.groupKey ?? null) === null;
}

/** Inserts many tasks with multi-row statements; call inside a transaction. */
export function taskInsertMany(db: Database, rows: readonly NewTaskRow[]): void {
  const plain = rows.filter(isPlain);
  const other = plain.length === rows.length ? [] : rows.filter((row) => !isPlain(row));
  insertChunks(db, plain, PLAIN_COLUMNS, PLAIN_ROW, PLAIN_CHUNK, plainValues);
  insertChunks(db, other, INSERT_COLUMNS, INSERT_ROW, INSERT_CHUNK, insertValues);
}

function insertChunks(
  db: Database,
  rows: readonly NewTaskRow[],
  columns: string,
  row: string,
  chunk: number,
  bind: (row: NewTaskRow, values: SqlValue[]) => unknown,
): void {
  for (let start = 0; start < rows.length; start += chunk) {
    const end = Math.min(rows.length, start + chunk);
    const values: SqlValue[] = [];
    for (let i = start; i < end; i++) bind(rows[i]!, values);
    db.run(
      `INSERT INTO apalis_tasks (${columns}) VALUES ${placeholders(row, end - start)}`,
      values,
    );
  }
}

const placeholderCache = new Map<string, string>();

/** `n` copies of a row's placeholders, joined; cached (chunks have a handful of sizes). */
function placeholders(row: string, n: number): string {
  const key = `${n}:${row}`;
  let text = placeholderCache.get(key);
  if (text === undefined) {
    text = new Array(n).fill(row).join(", ");
    if (placeholderCache.size < 64) placeholderCache.set(key, text);
  }
  return text;
}

/** Claim order: higher priority first, then earlier `run_at`, then id (ULIDs sort by time). */
export function compareClaimOrder(
  a: Pick<TaskRow, "priority" | "run_at" | "id">,
  b: Pick<TaskRow, "priority" | "run_at" | "id">,
): number {
  return b.priority - a.priority || a.run_at - b.run_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

// The partial indexes' conditions, word for word (schema.ts): a statement that names one lets
// SQLite use that index instead of reading the table.
const IS_WAITING = "status IN ('pending','failed')"; // apalis_tasks_claim
const IS_HELD = "status IN ('queued','running')"; // apalis_tasks_held
/**
 * The finished-tasks index's condition (`apalis_tasks_finished`): done, failed and killed, the
 * statuses that sort from 'done' to 'killed'. Exported so a test can check that SQLite matches
 * it to the index.
 */
export const IS_FINISHED = "status BETWEEN 'done' AND 'killed'";

// The claim index orders a queue's waiting tasks by priority, then run_at. A claim that names
// no priority cannot stop at the first task not yet due (a higher priority may follow), so it
// read every scheduled task of the queue whenever fewer were due than it asked for: 80 ms for a
// million scheduled tasks, in the write transaction of every flush that came back short. Claims
// therefore name the queue's priorities (`priority IN (…)`): SQLite then reads each priority's
// due tasks in order and stops at its first future one. The priorities come from a skip scan
// (a couple of index entries per priority); past MAX_LEVELS of them, the claim names none.
const MAX_LEVELS = 64;
const WAITING = `queue = ?1 AND ${IS_WAITING}`;

/**
 * The distinct priorities of a queue's waiting tasks, highest first (`[]` when none waits), or
 * `null` when there are more than {@linkcode MAX_LEVELS}.
 */
export function taskWaitingPriorities(db: Database, queue: string): number[] | null {
  const levels = db.values<[number]>(
    `WITH RECURSIVE levels(priority, n) AS (
       SELECT max(priority), 1 FROM apalis_tasks WHERE ${WAITING}
       UNION ALL
       SELECT (SELECT max(priority) FROM apalis_tasks
               WHERE ${WAITING} AND priority < levels.priority), n + 1
       FROM levels WHERE levels.priority IS NOT NULL AND n <= ${MAX_LEVELS}
     )
     SELECT priority FROM levels WHERE priority IS NOT NULL`,
    [queue],
  ).map((row) => row[0]);
  return levels.length > MAX_LEVELS ? null : levels;
}

// IN lists come in a few lengths (1, 2, 4 … 64; the last priority repeats to fill one), so that
// the statement cache holds a few claims rather than one per count. 0: no priority named.
function levelSlots(levels: readonly number[] | null): number {
  if (levels === null) return 0;
  let slots = 1;
  while (slots < levels.length) slots *= 2;
  return slots;
}

function levelValues(levels: readonly number[] | null): number[] {
  if (levels === null) return [];
  const values = [...levels];
  while (values.length < levelSlots(levels)) values.push(levels[levels.length - 1]!);
  return values;
}

// A LIMIT that is a bare parameter is one SQLite plans with: binding it again expires the
// statement, so every claim was prepared anew (32 µs of the 68 a one-task claim took). A LIMIT
// computed from the parameter is only read when the statement runs.
const LIMIT_PARAMETER = "LIMIT ? + 0";

/** `columns` of a queue's due waiting tasks in claim order, naming `slots` priorities, LIMIT ?. */
function dueInClaimOrder(slots: number, columns: string): string {
  const priority = slots === 0 ? "" : ` AND priority IN (${placeholders("?", slots)})`;
  return `SELECT ${columns} FROM apalis_tasks
    WHERE queue = ? AND ${IS_WAITING}${priority} AND run_at <= ?
    ORDER BY priority DESC, run_at, id
    ${LIMIT_PARAMETER}`;
}

function claimCandidates(slots: number): string {
  return dueInClaimOrder(slots, "rowid");
}

// A claim ahead skips tasks on their last attempt, which are not in the claim index's columns:
// it looks at the first AHEAD_WINDOW times as many due tasks as it wants, not at all of them (a
// retry storm of 500,000 last attempts made every flush's claim ahead read them all, 230 ms).
const AHEAD_WINDOW = 4;

function claimAheadCandidates(slots: number, columns: string): string {
  return `SELECT ${columns} FROM (${
    dueInClaimOrder(slots, `rowid AS rowid, ${TASK_RUN_COLUMNS}`)
  }) WHERE attempts + 1 < max_attempts ${LIMIT_PARAMETER}`;
}

const claimStatements = new Map<string, string>();

/**
 * The read half of a worker's claim, naming `slots` priorities, ahead of free slots or not
 * (cached): the due tasks it takes, in claim order, with what the worker needs to run them.
 */
function claimSql(slots: number, ahead: boolean, textArgs = false): string {
  const key = `${slots}:${ahead}:${textArgs}`;
  let sql = claimStatements.get(key);
  if (sql === undefined) {
    const columns = ownClaimColumns(textArgs);
    sql = ahead ? claimAheadCandidates(slots, columns) : dueInClaimOrder(slots, columns);
    claimStatements.set(key, sql);
  }
  return sql;
}

/**
 * The read half of the claim of tasks that start at once, for a queue whose waiting tasks have
 * one priority. Exported (like {@linkcode CLAIM_AHEAD_SQL}) so a test can check its plan.
 * Parameters: queue, priority, now, limit.
 */
export const CLAIM_SQL: string = claimSql(1, false);

/**
 * The read half of the claim of tasks a worker will start from memory as slots free up:
 * `running` with the attempt counted, like a direct start, but never a task's last attempt (a
 * crash before it starts must not kill a task that did not run), among the first
 * `AHEAD_WINDOW` times `limit` due tasks. Parameters: queue, priority, now, window, limit.
 */
export const CLAIM_AHEAD_SQL: string = claimSql(1, true);

// The write half of a claim: the rows just read, by rowid, in the same write transaction (no
// other connection can claim them in between). Reading first and writing without RETURNING is
// 6 % faster for a drain than UPDATE … RETURNING, which keeps every returned row in a temporary
// table before handing it out.
const CLAIM_MARK_SQL = `UPDATE apalis_tasks
  SET status = 'running', attempts = attempts + 1, lock_by = ?1, lock_at = ?2
  WHERE rowid IN (SELECT value FROM json_each(?3))`;

/**
 * Claims up to `limit` due tasks of a queue under `worker`, into `running` with the attempt
 * counted: for free slots, or ahead of them with `ahead` (see {@linkcode CLAIM_AHEAD_SQL}).
 * `levels` are the queue's waiting priorities when the caller has just read them; `textArgs`
 * reads payloads as text (see {@linkcode ClaimedRow}).
 */
export function taskClaim(
  db: Database,
  claim: {
    queue: string;
    worker: string;
    now: number;
    limit: number;
    ahead?: boolean;
    levels?: number[] | null;
    textArgs?: boolean;
  },
): ClaimedRow[] {
  const levels = claim.levels === undefined ? taskWaitingPriorities(db, claim.queue) : claim.levels;
  if (levels !== null && levels.length === 0) return [];
  const sql = claimSql(levelSlots(levels), claim.ahead === true, claim.textArgs === true);
  const rows = db.values(sql, [
    claim.queue,
    ...levelValues(levels),
    claim.now,
    ...(claim.ahead === true ? [claim.limit * AHEAD_WINDOW] : []),
    claim.limit,
  ]);
  if (rows.length === 0) return [];
  const rowids = JSON.stringify(rows.map((values) => values[0]));
  const marked = db.run(CLAIM_MARK_SQL, [claim.worker, claim.now, rowids]).changes;
  if (marked !== rows.length) {
    throw new Error(
      `Cannot claim tasks of queue '${claim.queue}': ${rows.length} were read but ${marked} marked`,
    );
  }
  return rows.map((values) => ownClaimedRow(values, claim.queue, claim.now));
}

/** How many tasks of `queue` workers hold (`queued` or `running`), read from the held-tasks index. */
export function taskHeldCount(db: Database, queue: string): number {
  return db.get<{ n: number }>(
    `SELECT count(*) AS n FROM apalis_tasks WHERE ${IS_HELD} AND queue = ?`,
    [queue],
  )?.n ?? 0;
}

/** How many tasks of each group of `queue` workers hold (groups holding none are left out). */
export function taskHeldByGroup(db: Database, queue: string): Map<string, number> {
  return new Map(
    db.values<[string, number]>(
      `SELECT group_key, count(*) FROM apalis_tasks
       WHERE ${IS_HELD} AND queue = ? AND group_key IS NOT NULL GROUP BY group_key`,
      [queue],
    ),
  );
}

const groupedStatements = new Map<string, string>();

/**
 * A queue's due waiting tasks in claim order, naming `slots` priorities, but for those of the
 * groups in a JSON array; the worker's claim columns, then the group. Parameters: queue, the
 * priorities, now, the groups to skip, limit.
 */
function groupedCandidates(slots: number, textArgs: boolean): string {
  const key = `${slots}:${textArgs}`;
  let sql = groupedStatements.get(key);
  if (sql === undefined) {
    const priority = slots === 0 ? "" : ` AND priority IN (${placeholders("?", slots)})`;
    sql = `SELECT ${ownClaimColumns(textArgs)}, group_key FROM apalis_tasks
      WHERE queue = ? AND ${IS_WAITING}${priority} AND run_at <= ?
        AND (group_key IS NULL OR group_key NOT IN (SELECT value FROM json_each(?)))
      ORDER BY priority DESC, run_at, id
      ${LIMIT_PARAMETER}`;
    groupedStatements.set(key, sql);
  }
  return sql;
}

/**
 * Claims up to `limit` due tasks of a queue under `worker`, into `running`, in claim order, but
 * never so many of a group that more than `groupLimit` of it are held: tasks of full groups are
 * skipped, and those behind them taken (a busy group does not hold the others up). Reads the
 * queue's due tasks in pages until it has `limit` or there are none left; tasks of groups already
 * full when it starts are filtered out by the statement itself.
 */
export function taskClaimGrouped(
  db: Database,
  claim: {
    queue: string;
    worker: string;
    now: number;
    limit: number;
    groupLimit: number;
    levels?: number[] | null;
    textArgs?: boolean;
  },
): ClaimedRow[] {
  const { queue, now, limit, groupLimit } = claim;
  const levels = claim.levels === undefined ? taskWaitingPriorities(db, queue) : claim.levels;
  if (limit <= 0 || (levels !== null && levels.length === 0)) return [];
  const textArgs = claim.textArgs === true;
  const sql = groupedCandidates(levelSlots(levels), textArgs);
  const groupAt = textArgs ? 12 : 11;
  const held = taskHeldByGroup(db, queue);
  const full = new Set<string>();
  for (const [group, n] of held) if (n >= groupLimit) full.add(group);
  const page = Math.max(32, limit * 4);
  const claimed: ClaimedRow[] = [];
  while (claimed.length < limit) {
    const rows = db.values(sql, [
      queue,
      ...levelValues(levels),
      now,
      JSON.stringify([...full]),
      page,
    ]);
    const picked: unknown[][] = [];
    for (const values of rows) {
      if (claimed.length + picked.length >= limit) break;
      const group = values[groupAt] as string | null;
      if (group !== null) {
        if (full.has(group)) continue; // filled by this claim, after the statement read it
        const n = (held.get(group) ?? 0) + 1;
        held.set(group, n);
        if (n >= groupLimit) full.add(group);
      }
      picked.push(values.slice(0, groupAt));
    }
    if (picked.length > 0) {
      const rowids = JSON.stringify(picked.map((values) => values[0]));
      db.run(CLAIM_MARK_SQL, [claim.worker, now, rowids]);
      for (const values of picked) claimed.push(ownClaimedRow(values, queue, now));
    }
    if (rows.length < page) break; // none left past these
  }
  return claimed;
}

/**
 * Claims for several queues in one statement (shared storage): for each entry, up to `limit`
 * due tasks of `queue` in claim order, into `queued` under that entry's `worker`.
 */
export function taskClaimShared(
  db: Database,
  claim: { now: number; wants: readonly { queue: string; worker: string; limit: number }[] },
): ClaimedRow[] {
  const wants = claim.wants
    .map((want) => ({ ...want, levels: taskWaitingPriorities(db, want.queue) }))
    .filter((want) => want.levels === null || want.levels.length > 0);
  if (wants.length === 0) return [];
  const holder = wants.map(() => "WHEN ? THEN ?").join(" ");
  const candidates = wants.map((want) =>
    `SELECT rowid FROM (${claimCandidates(levelSlots(want.levels))})`
  ).join(" UNION ALL ");
  const params: SqlValue[] = [];
  for (const want of wants) params.push(want.queue, want.worker);
  params.push(claim.now);
  for (const want of wants) {
    params.push(want.queue, ...levelValues(want.levels), claim.now, want.limit);
  }
  const rows = db.values(
    `UPDATE apalis_tasks SET status = 'queued', lock_by = CASE queue ${holder} END, lock_at = ?
     WHERE rowid IN (${candidates})
     RETURNING ${CLAIM_COLUMNS}`,
    params,
  ).map(claimedRow);
  return rows.sort(compareClaimOrder);
}

/** Marks buffered tasks as started in one statement; returns the ids that were still ours. */
export function taskStartMany(
  db: Database,
  ids: readonly string[],
  worker: string,
  now: number,
): Set<string> {
  if (ids.length === 0) return new Set();
  const rows = db.all<{ id: string }>(
    `UPDATE apalis_tasks SET status = 'running', attempts = attempts + 1, lock_at = ?
     WHERE id IN (SELECT value FROM json_each(?)) AND status = 'queued' AND lock_by = ?
     RETURNING id`,
    [now, JSON.stringify(ids), worker],
  );
  return new Set(rows.map((row) => row.id));
}

// Results up to this size ride in the batched ack as hex; larger ones get their own statement.
const BATCH_RESULT_LIMIT = 2048;

/**
 * Records many outcomes: successful ones with small results in one statement, the rest one by
 * one. Returns the ids whose attempt was fenced off (rescued or killed meanwhile). The batched
 * outcomes are added to `counts` (which may hold other counts of the flush) and written with it.
 */
export function taskAckMany(
  db: Database,
  worker: string,
  acks: readonly TaskAck[],
  counts: OutcomeCounts = new OutcomeCounts(), // one count per minute and queue, however many
): Set<string> {
  const fenced = new Set<string>();
  // Batched acks, by attempt: the attempt is then one parameter, not a value read per row.
  const byAttempt = new Map<number, TaskAck[]>();
  for (const ack of acks) {
    if (
      ack.status === "done" && !ack.inRun &&
      (ack.result === null || ack.result.length <= BATCH_RESULT_LIMIT)
    ) {
      const group = byAttempt.get(ack.attempt);
      if (group === undefined) byAttempt.set(ack.attempt, [ack]);
      else group.push(ack);
    } else if (!taskAck(db, worker, ack)) {
      fenced.add(ack.id);
    }
  }
  // `changed` of a batch's acks were written; when fewer than all, `written` reads which.
  const tally = (group: readonly TaskAck[], changed: number, written: () => [string][]) => {
    const held = changed === group.length ? null : new Set(written().map((row) => row[0]));
    for (const ack of group) {
      if (held === null || held.has(ack.id)) counts.add(ack.queue, "done", ack.doneAt);
      else fenced.add(ack.id);
    }
  };
  for (const [attempt, group] of byAttempt) {
    const byTime = byDoneAt(group);
    if (byTime !== null) {
      for (const [doneAt, acks] of byTime) {
        const ids = JSON.stringify(acks.map((ack) => ack.id));
        const params = [ids, worker, attempt, doneAt];
        tally(acks, db.run(ACK_DONE_AT_SQL, params).changes, () => db.values(ACKED_AT_SQL, params));
      }
      continue;
    }
    const ids = JSON.stringify(group.map((ack) => ack.id));
    const doneAts = JSON.stringify(group.map((ack) => ack.doneAt));
    // Results as text unless one is bytes: SQLite stores the text's UTF-8 bytes.
    const asText = !group.some((ack) => ack.result instanceof Uint8Array);
    const results = group.every((ack) => ack.result === null) ? null : JSON.stringify(
      group.map(({ result }) => asText || result === null ? result : toHex(result)),
    );
    const sql = asText ? ACK_DONE_SQL : ACK_DONE_HEX_SQL;
    const changed = db.run(sql, [ids, worker, attempt, doneAts, results]).changes;
    tally(group, changed, () => db.values(ACKED_SQL, [ids, worker, attempt, doneAts]));
  }
  counts.write(db);
  return fenced;
}

// Tasks that finish together, the case batching is for, mostly finish in the same millisecond:
// acks of one attempt with no result and at most this many finish times are recorded with one
// statement per time, which binds done_at once and finds its rows by id alone (7 % faster for a
// drain than reading each row's done_at by position, below).
const MAX_DONE_AT_GROUPS = 3;

/** `acks` by finish time, or null when one has a result or they finish at too many times. */
function byDoneAt(acks: readonly TaskAck[]): Map<number, TaskAck[]> | null {
  const byTime = new Map<number, TaskAck[]>();
  for (const ack of acks) {
    if (ack.result !== null) return null;
    const group = byTime.get(ack.doneAt);
    if (group !== undefined) group.push(ack);
    else if (byTime.size === MAX_DONE_AT_GROUPS) return null;
    else byTime.set(ack.doneAt, [ack]);
  }
  return byTime;
}

// Parameters: the ids (a JSON array of strings), the worker, the attempt, their done_at.
const ACK_DONE_AT_SQL = `UPDATE apalis_tasks
  SET status = 'done', last_result = NULL, last_error = NULL, done_at = ?4
  WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'running' AND lock_by = ?2
    AND attempts = ?3`;

const ACKED_AT_SQL = `SELECT id FROM apalis_tasks WHERE id IN (SELECT value FROM json_each(?1))
  AND status = 'done' AND lock_by = ?2 AND attempts = ?3 AND done_at = ?4`;

// Parameters: the ids (a JSON array of strings), the worker, the attempt, each ack's done_at (a
// JSON array in the ids' order) and each result, as text or in hex (likewise, or NULL when all
// are null).
// Each row reads its own values by position (`?4 ->> j.key`: SQLite parses each array once per
// statement); one array of [id, doneAt, result] triples, parsed again for every field of every
// row, made the queue's claim and ack SQL 14 % slower. No RETURNING: the count of changed rows
// tells whether every ack held (7 % more acks per second).
function ackDoneSql(result: string): string {
  return `UPDATE apalis_tasks SET status = 'done', last_result = ${result},
    last_error = NULL, done_at = ?4 ->> j.key
  FROM json_each(?1) AS j
  WHERE apalis_tasks.id = j.value AND apalis_tasks.status = 'running'
    AND apalis_tasks.lock_by = ?2 AND apalis_tasks.attempts = ?3`;
}
const ACK_DONE_SQL = ackDoneSql("CAST(?5 ->> j.key AS BLOB)"); // results as text
const ACK_DONE_HEX_SQL = ackDoneSql("unhex(?5 ->> j.key)"); // results as bytes, in hex

const ACKED_SQL = `SELECT t.id FROM json_each(?1) AS j
  JOIN apalis_tasks AS t ON t.id = j.value
  WHERE t.status = 'done' AND t.lock_by = ?2 AND t.attempts = ?3 AND t.done_at = ?4 ->> j.key`;

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

const utf8 = new TextEncoder();

/** Bytes (or text, as its UTF-8 bytes) in hex. */
function toHex(value: Uint8Array | string): string {
  const bytes = typeof value === "string" ? utf8.encode(value) : value;
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i]!];
  return out;
}

/** Records the outcome of an attempt; false when the attempt was fenced off (rescued, killed). */
export function taskAck(db: Database, worker: string, ack: TaskAck): boolean {
  const rows = db.all<OutcomeRow>(
    `UPDATE apalis_tasks SET status = ?, last_result = CAST(? AS BLOB), last_error = ?,
       run_at = coalesce(?, run_at), done_at = ?, ${FIRES_RUN_TRIGGER}
     WHERE id = ? AND status = 'running' AND lock_by = ? AND attempts = ?
     RETURNING ${OUTCOME_COLUMNS}`,
    [ack.status, ack.result, ack.error, ack.runAt, ack.doneAt, ack.id, worker, ack.attempt],
  );
  throughputAddRows(db, rows);
  return rows.length === 1;
}

/** What a statement that may record outcomes returns, for counting them. */
interface OutcomeRow {
  queue: string;
  status: TaskStatus;
  done_at: number | null;
}

const OUTCOME_COLUMNS = "queue, status, done_at";

/**
 * Returns tasks claimed ahead (see {@linkcode CLAIM_AHEAD_SQL}) that never started to `pending`,
 * giving their attempt back.
 */
export function taskReleaseAhead(
  db: Database,
  worker: string,
  tasks: readonly { id: string; attempts: number }[],
): number {
  if (tasks.length === 0) return 0;
  return db.run(
    `UPDATE apalis_tasks SET status = 'pending', attempts = attempts - 1, lock_by = NULL,
       lock_at = NULL
     FROM json_each(?) AS j
     WHERE apalis_tasks.id = j.value ->> 0 AND apalis_tasks.status = 'running'
       AND apalis_tasks.lock_by = ? AND apalis_tasks.attempts = j.value ->> 1`,
    [JSON.stringify(tasks.map((task) => [task.id, task.attempts])), worker],
  ).changes;
}

/** Returns a worker's buffered (`queued`) tasks to `pending`. */
export function taskRelease(db: Database, worker: string, ids?: readonly string[]): number {
  if (ids) {
    return db.run(
      `UPDATE apalis_tasks SET status = 'pending', lock_by = NULL, lock_at = NULL
       WHERE status = 'queued' AND lock_by = ? AND id IN (SELECT value FROM json_each(?))`,
      [worker, JSON.stringify(ids)],
    ).changes;
  }
  return db.run(RELEASE_SQL, [worker]).changes;
}

/**
 * Returns all of a worker's buffered tasks to `pending` (parameter: the worker). It spells out
 * the held-tasks index's own condition, without which it read the whole table at every
 * graceful stop. Exported so a test can check its plan.
 */
export const RELEASE_SQL = `UPDATE apalis_tasks SET status = 'pending', lock_by = NULL,
    lock_at = NULL
  WHERE ${IS_HELD} AND status = 'queued' AND lock_by = ?`;

const LOST_ERROR = JSON.stringify({
  name: "WorkerLostError",
  message: "The worker running this task died or stopped heart-beating before it finished",
});

/**
 * Workflow bookkeeping (joins, run failure) lives in the trigger `apalis_run_step`, which fires
 * only for statements that set `step`. Paths that may end or revive a run's task name it; the
 * hot paths for plain tasks (claim, start, the batched ack) do not, and pay nothing for it.
 */
const FIRES_RUN_TRIGGER = "step = step";

const RESCUE_SET = `status = CASE WHEN status = 'running' AND attempts >= max_attempts
                                  THEN 'killed' ELSE 'pending' END,
       last_error = CASE WHEN status = 'running' THEN ? ELSE last_error END,
       done_at = CASE WHEN status = 'running' AND attempts >= max_attempts THEN ? ELSE done_at END,
       lock_by = CASE WHEN status = 'running' AND attempts >= max_attempts
                      THEN lock_by ELSE NULL END,
       lock_at = NULL, ${FIRES_RUN_TRIGGER}`;

/**
 * Returns orphaned tasks to `pending`: those `queued` or `running` under a lock holder that is
 * not a live registered worker. A `running` task has used its attempt; if that was its last, it
 * is `killed` instead.
 */
export function taskRescueOrphans(db: Database, now: number): number {
  const rows = db.all<OutcomeRow>(
    `UPDATE apalis_tasks SET ${RESCUE_SET}
     WHERE status IN ('queued','running')
       AND (lock_by IS NULL
            OR lock_by NOT IN (SELECT name FROM apalis_workers WHERE stopped_at IS NULL))
     RETURNING ${OUTCOME_COLUMNS}`,
    [LOST_ERROR, now],
  );
  throughputAddRows(db, rows);
  return rows.length;
}

/** Rescues the tasks a worker name still holds (its previous incarnation died). */
export function taskRescueHeldBy(db: Database, worker: string, now: number): number {
  const rows = db.all<OutcomeRow>(
    `UPDATE apalis_tasks SET ${RESCUE_SET}
     WHERE status IN ('queued','running') AND lock_by = ?
     RETURNING ${OUTCOME_COLUMNS}`,
    [LOST_ERROR, now, worker],
  );
  throughputAddRows(db, rows);
  return rows.length;
}

/**
 * When the next waiting task of a queue becomes due, if any is waiting: the earliest of each
 * priority's first task (`levels`: the queue's waiting priorities, when the caller has just read
 * them), or a scan past {@linkcode MAX_LEVELS} priorities.
 */
export function taskNextRunAt(
  db: Database,
  queue: string,
  levels: readonly number[] | null = taskWaitingPriorities(db, queue),
): number | undefined {
  if (levels !== null && levels.length === 0) return undefined;
  const row = levels === null
    ? db.get<{ run_at: number | null }>(
      `SELECT min(run_at) AS run_at FROM apalis_tasks WHERE ${WAITING}`,
      [queue],
    )
    : db.get<{ run_at: number | null }>(
      `SELECT min((SELECT run_at FROM apalis_tasks WHERE ${WAITING} AND priority = j.value
                   ORDER BY run_at LIMIT 1)) AS run_at
       FROM json_each(?2) AS j`,
      [queue, JSON.stringify(levels)],
    );
  return row?.run_at ?? undefined;
}

/** A task's own retry backoff (JSON), which the steps it enqueues inherit. */
export function taskBackoff(db: Database, id: string): string | null {
  return db.get<{ backoff: string | null }>("SELECT backoff FROM apalis_tasks WHERE id = ?", [id])
    ?.backoff ?? null;
}

/** Reads one task. */
export function taskGet(db: Database, id: string): TaskRow | undefined {
  return withProgress((columns) =>
    db.get<TaskRow>(`SELECT ${columns} FROM apalis_tasks WHERE id = ?`, [id])
  );
}

/** Reads several tasks by id (missing ids are left out). */
export function taskGetMany(db: Database, ids: readonly string[]): TaskRow[] {
  return withProgress((columns) =>
    db.all<TaskRow>(
      `SELECT ${columns} FROM apalis_tasks WHERE id IN (SELECT value FROM json_each(?))`,
      [JSON.stringify(ids)],
    )
  );
}

/**
 * Reads with the progress columns, or without them on a schema older than migration 12 (the
 * library was upgraded and `setup()` not run since): tasks stay readable, without progress.
 */
function withProgress<R>(read: (columns: string) => R): R {
  try {
    return read(READ_COLUMNS);
  } catch (error) {
    if (!/no such column: progress/.test(String(error))) throw error;
    return read(COLUMNS);
  }
}

// The three partial indexes and, for reading every task once, the part of each to take:
// `failed` is in two of them, taken from the claim index.
const INDEX_PARTS = [
  { index: "apalis_tasks_claim", part: IS_WAITING },
  { index: "apalis_tasks_held", part: IS_HELD },
  { index: "apalis_tasks_finished", part: `${IS_FINISHED} AND status IN ('done','killed')` },
] as const;

const INDEX_CONDITION: Record<TaskStatus, string> = {
  pending: IS_WAITING,
  queued: IS_HELD,
  running: IS_HELD,
  done: IS_FINISHED,
  failed: IS_FINISHED,
  killed: IS_FINISHED,
};

// A queue's tasks in every state, newest first: no index orders them by id, so SQLite walks the
// whole table newest first and keeps the queue's rows, which reads every other queue's newer
// rows too (80 ms for a 100-task queue beside a million others, on every refresh of its board
// page). A queue this small is listed from its entries in the three partial indexes instead,
// sorted; a bigger one is common enough in the table for the walk to find a page quickly.
const SMALL_QUEUE = 20_000;

// A queue's task ids in every state, each part read from its partial index (named: left to
// itself, SQLite read the held tasks by walking the whole table in id order).
const QUEUE_IDS = INDEX_PARTS.map(({ index, part }) =>
  `SELECT id FROM apalis_tasks INDEXED BY ${index} WHERE queue = ?1 AND ${part}`
).join(" UNION ALL ");

/** Whether `queue` holds fewer than {@linkcode SMALL_QUEUE} tasks (reads at most that many). */
function isSmallQueue(db: Database, queue: string): boolean {
  const row = db.get<{ n: number }>(
    `SELECT count(*) AS n FROM (SELECT 1 FROM (${QUEUE_IDS}) LIMIT ?2)`,
    [queue, SMALL_QUEUE],
  );
  return (row?.n ?? 0) < SMALL_QUEUE;
}

// The columns of a listing that reads at most `n` bytes of each payload and result (cut in
// SQLite: only those bytes reach JavaScript). A value is cut as bytes even if stored as text.
function previewColumns(n: number): string {
  const size = (column: string) =>
    `CASE typeof(${column}) WHEN 'blob' THEN length(${column}) WHEN 'null' THEN NULL ` +
    `ELSE length(CAST(${column} AS BLOB)) END`;
  return COLUMNS
    .replace(
      /\bargs\b/,
      `substr(CAST(args AS BLOB), 1, ${n}) AS args, ${size("args")} AS args_bytes`,
    )
    .replace(
      /\blast_result\b/,
      `substr(CAST(last_result AS BLOB), 1, ${n}) AS last_result, ${
        size("last_result")
      } AS result_bytes`,
    );
}

/** Lists tasks newest first, optionally by queue and status, payloads cut to `previewBytes`. */
export function taskList(
  db: Database,
  filter: {
    queue?: string;
    status?: TaskStatus;
    limit: number;
    offset: number;
    previewBytes?: number;
  },
): ListedTaskRow[] {
  const { previewBytes } = filter;
  if (previewBytes !== undefined && !(Number.isSafeInteger(previewBytes) && previewBytes >= 0)) {
    throw new RangeError(
      `'previewBytes' must be an integer >= 0: current value is ${previewBytes}`,
    );
  }
  const columns = previewBytes === undefined ? COLUMNS : previewColumns(previewBytes);
  if (filter.queue !== undefined && filter.status === undefined && isSmallQueue(db, filter.queue)) {
    return db.all<TaskRow>(
      `SELECT ${columns} FROM apalis_tasks
       WHERE id IN (SELECT id FROM (${QUEUE_IDS}) ORDER BY id DESC LIMIT ?2 OFFSET ?3)
       ORDER BY id DESC`,
      [filter.queue, filter.limit, filter.offset],
    );
  }
  const where: string[] = [];
  const params: SqlValue[] = [];
  if (filter.queue !== undefined) {
    where.push("queue = ?");
    params.push(filter.queue);
  }
  if (filter.status !== undefined) {
    // The partial index's own condition, spelled out, lets SQLite pick that index.
    where.push(INDEX_CONDITION[filter.status], "status = ?");
    params.push(filter.status);
  }
  params.push(filter.limit, filter.offset);
  return db.all<TaskRow>(
    `SELECT ${columns} FROM apalis_tasks ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
     ORDER BY id DESC LIMIT ? OFFSET ?`,
    params,
  );
}

/** Counts tasks per queue and status, reading only the partial indexes. */
export function taskCounts(
  db: Database,
  queue?: string,
): { queue: string; status: TaskStatus; n: number }[] {
  const filter = queue === undefined ? "" : " AND queue = ?";
  const sql = INDEX_PARTS.map(({ part }) =>
    `SELECT queue, status, count(*) AS n FROM apalis_tasks WHERE ${part}${filter}
     GROUP BY queue, status`
  ).join(" UNION ALL ");
  return db.all(sql, queue === undefined ? [] : [queue, queue, queue]);
}

/** The oldest due `pending` task's `run_at` per queue. */
export function taskOldestPending(
  db: Database,
  now: number,
): { queue: string; run_at: number }[] {
  return db.all(
    `SELECT queue, min(run_at) AS run_at FROM apalis_tasks
     WHERE status IN ('pending','failed') AND run_at <= ? GROUP BY queue`,
    [now],
  );
}

/** Puts a finished or waiting task back to `pending` with a fresh attempt budget. */
export function taskRetry(db: Database, id: string, now: number): boolean {
  return db.run(
    `UPDATE apalis_tasks SET status = 'pending', attempts = 0, run_at = ?, done_at = NULL,
       lock_by = NULL, lock_at = NULL, ${FIRES_RUN_TRIGGER}
     WHERE id = ? AND status IN ('done','failed','killed','pending')`,
    [now, id],
  ).changes === 1;
}

/** What a batched statement did, and where the next batch starts (null: it was the last). */
export interface Batch<Cursor> {
  changed: number;
  next: Cursor | null;
}

/**
 * Retries the tasks of a queue in a finished status (`done`, `failed`, `killed`), the next
 * `limit` of them by id after `after` (from the first when omitted).
 */
export function taskRetryAll(
  db: Database,
  filter: { queue: string; status: TaskStatus; now: number },
  limit: number,
  after = "",
): Batch<string> {
  const { queue, status, now } = filter;
  const where = `${IS_FINISHED} AND queue = ? AND status = ? AND id > ?`;
  // The window's last id, from the finished-tasks index alone; then one ranged UPDATE.
  const last = db.values<[string]>(
    `SELECT id FROM apalis_tasks WHERE ${where} ORDER BY id LIMIT 1 OFFSET ?`,
    [queue, status, after, limit - 1],
  )[0]?.[0];
  const changed = db.run(
    `UPDATE apalis_tasks SET status = 'pending', attempts = 0, run_at = ?, done_at = NULL,
       lock_by = NULL, lock_at = NULL, ${FIRES_RUN_TRIGGER}
     WHERE ${where}${last === undefined ? "" : " AND id <= ?"}`,
    [now, queue, status, after, ...(last === undefined ? [] : [last])],
  ).changes;
  return { changed, next: last ?? null };
}

/** Kills a task that has not finished; a running handler's later ack is fenced off. */
export function taskKill(db: Database, id: string, error: string, now: number): boolean {
  const rows = db.all<OutcomeRow>(
    `UPDATE apalis_tasks SET status = 'killed', last_error = ?, done_at = ?, ${FIRES_RUN_TRIGGER}
     WHERE id = ? AND status IN ('pending','queued','running','failed')
     RETURNING ${OUTCOME_COLUMNS}`,
    [error, now, id],
  );
  throughputAddRows(db, rows);
  return rows.length === 1;
}

/** Where a vacuum stopped in the finished-tasks index: the last entry it looked at. */
export type VacuumCursor = readonly [queue: string, status: string, id: string];

/**
 * Deletes finished tasks (`done`, `killed`) that finished at or before `before`, among the next
 * `limit` entries of the finished-tasks index after `after` (from the start when omitted); tasks
 * of a workflow run are left to their run (see `deleteRuns` in retention.ts).
 * Returns how many it deleted and where to go on from, or `next: null` at the end of the index.
 * Walking the index by key keeps each call's cost to its window, however many recent tasks a
 * queue keeps.
 */
export function taskVacuum(
  db: Database,
  before: number,
  limit: number,
  after: VacuumCursor = ["", "", ""],
): Batch<VacuumCursor> {
  // The window's last entry, read from the index alone; then one ranged DELETE over the window.
  const last = db.values<[string, string, string]>(
    `SELECT queue, status, id FROM apalis_tasks
     WHERE ${IS_FINISHED} AND (queue, status, id) > (?, ?, ?)
     ORDER BY queue, status, id LIMIT 1 OFFSET ?`,
    [...after, limit - 1],
  )[0];
  const upTo = last ? " AND (queue, status, id) <= (?, ?, ?)" : "";
  const changed = db.run(
    `DELETE FROM apalis_tasks
     WHERE ${IS_FINISHED} AND (queue, status, id) > (?, ?, ?)${upTo}
       AND status IN ('done','killed') AND done_at <= ?
       -- A task of a run goes with its run, whole (see retention.ts), unless the run is gone.
       AND (run_id IS NULL OR NOT EXISTS (SELECT 1 FROM apalis_runs WHERE id = apalis_tasks.run_id))`,
    [...after, ...(last ?? []), before],
  ).changes;
  return { changed, next: last ?? null };
}

/** Deletes one task, whatever its state. */
export function taskDelete(db: Database, id: string): boolean {
  return db.run("DELETE FROM apalis_tasks WHERE id = ?", [id]).changes === 1;
}
