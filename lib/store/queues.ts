/**
 * Queue settings on SQLite (`apalis_queues`): pause and limits, read by primary key at every
 * worker flush, and the claim of a queue that has them. Every function runs inside the caller's
 * transaction; a worker's flush holds SQLite's write lock, so claims of every process take turns
 * and each sees the counts the one before it left.
 *
 * @module
 */
import type { ClaimedRow, QueueLimitsChange, QueueSettingsRow } from "../backend/types.ts";
import type { Database } from "../sqlite/types.ts";
import { parseRateWindow, rateAllowance, rateRecord } from "./rate_window.ts";
import {
  taskClaim,
  taskClaimGrouped,
  taskHeldCount,
  taskNextRunAt,
  taskWaitingPriorities,
} from "./tasks.ts";

/** A stored settings row, with the rate limit's window. */
export interface StoredQueueSettings extends QueueSettingsRow {
  rate_window: string | null;
}

/** A paused worker looks again this often (a resume also wakes it at once). */
export const PAUSED_RECHECK_MS = 1000;
/** A worker held back by a concurrency limit looks again at most this long after. */
export const LIMITED_RECHECK_MS = 200;
/** A worker held back by the rate limit looks again at least this often (limits may change). */
export const RATE_RECHECK_MAX_MS = 1000;

const SETTINGS_COLUMNS = "queue, paused, rate_limit, rate_per_ms, concurrency, " +
  "group_concurrency, rate_window, updated_at";

interface RawSettings extends Omit<StoredQueueSettings, "paused"> {
  paused: number;
}

function fromRaw(raw: RawSettings): StoredQueueSettings {
  return { ...raw, paused: raw.paused === 1 };
}

/** One queue's settings (one primary-key lookup), or undefined. */
export function queueSettingsGet(db: Database, queue: string): StoredQueueSettings | undefined {
  const raw = db.get<RawSettings>(
    `SELECT ${SETTINGS_COLUMNS} FROM apalis_queues WHERE queue = ?`,
    [queue],
  );
  return raw && fromRaw(raw);
}

/** Every queue's settings, by queue name. */
export function queueSettingsList(db: Database): StoredQueueSettings[] {
  return db.all<RawSettings>(`SELECT ${SETTINGS_COLUMNS} FROM apalis_queues ORDER BY queue`)
    .map(fromRaw);
}

/** Whether settings change what a claim may do. */
export function isRestricted(settings: QueueSettingsRow | undefined): boolean {
  return settings !== undefined && (settings.paused || settings.rate_limit !== null ||
    settings.concurrency !== null || settings.group_concurrency !== null);
}

/** Changes a queue's limits; a new rate empties the window. Returns the stored row. */
export function queueSetLimits(
  db: Database,
  queue: string,
  change: QueueLimitsChange,
  now: number,
): StoredQueueSettings {
  const current = queueSettingsGet(db, queue);
  const next = {
    paused: current?.paused ?? false,
    rate_limit: current?.rate_limit ?? null,
    rate_per_ms: current?.rate_per_ms ?? null,
    concurrency: current?.concurrency ?? null,
    group_concurrency: current?.group_concurrency ?? null,
    rate_window: current?.rate_window ?? null,
  };
  if (change.rate !== undefined) {
    next.rate_limit = change.rate?.limit ?? null;
    next.rate_per_ms = change.rate?.perMs ?? null;
    if (next.rate_limit !== current?.rate_limit || next.rate_per_ms !== current?.rate_per_ms) {
      next.rate_window = null;
    }
  }
  if (change.concurrency !== undefined) next.concurrency = change.concurrency;
  if (change.groupConcurrency !== undefined) next.group_concurrency = change.groupConcurrency;
  return upsert(db, queue, next, now);
}

/** Pauses or resumes a queue. Returns the stored row. */
export function queueSetPaused(
  db: Database,
  queue: string,
  paused: boolean,
  now: number,
): StoredQueueSettings {
  const current = queueSettingsGet(db, queue);
  return upsert(db, queue, {
    paused,
    rate_limit: current?.rate_limit ?? null,
    rate_per_ms: current?.rate_per_ms ?? null,
    concurrency: current?.concurrency ?? null,
    group_concurrency: current?.group_concurrency ?? null,
    rate_window: current?.rate_window ?? null,
  }, now);
}

/** Writes a queue's settings; a row that restricts nothing is deleted (the hot path's case). */
function upsert(
  db: Database,
  queue: string,
  row: Omit<StoredQueueSettings, "queue" | "updated_at">,
  now: number,
): StoredQueueSettings {
  const stored: StoredQueueSettings = { queue, ...row, updated_at: now };
  if (!isRestricted(stored)) {
    db.run("DELETE FROM apalis_queues WHERE queue = ?", [queue]);
    return stored;
  }
  db.run(
    `INSERT INTO apalis_queues (${SETTINGS_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (queue) DO UPDATE SET paused = excluded.paused,
       rate_limit = excluded.rate_limit, rate_per_ms = excluded.rate_per_ms,
       concurrency = excluded.concurrency, group_concurrency = excluded.group_concurrency,
       rate_window = excluded.rate_window, updated_at = excluded.updated_at`,
    [
      queue,
      row.paused ? 1 : 0,
      row.rate_limit,
      row.rate_per_ms,
      row.concurrency,
      row.group_concurrency,
      row.rate_window,
      now,
    ],
  );
  return stored;
}

/** What a claim of a limited (not paused) queue took, and when to look again if short. */
export interface LimitedClaim {
  running: ClaimedRow[];
  /** Set when the claim came back short: in how long to look again (`null`: nothing waits). */
  nextDueInMs?: number | null;
}

/**
 * Claims up to `wanted` due tasks of a queue with limits, for free slots only (nothing ahead),
 * within its limits: `concurrency` minus the tasks held, what the rate window still allows, and
 * `groupConcurrency` per group. Records the claims in the rate window.
 */
export function claimWithinLimits(
  db: Database,
  settings: StoredQueueSettings,
  claim: { queue: string; worker: string; now: number; wanted: number; textArgs: boolean },
): LimitedClaim {
  const { queue, wanted } = claim;
  let now = claim.now;
  let allowed = wanted;
  let held: "concurrency" | "rate" | undefined;
  if (settings.concurrency !== null) {
    const room = Math.max(0, settings.concurrency - taskHeldCount(db, queue));
    if (room < allowed) [allowed, held] = [room, "concurrency"];
  }
  const rate = settings.rate_limit !== null && settings.rate_per_ms !== null
    ? rateAllowance(
      parseRateWindow(settings.rate_window),
      settings.rate_limit,
      settings.rate_per_ms,
      now,
    )
    : undefined;
  if (rate !== undefined) {
    now = rate.at; // claims of a rate-limited queue are stamped in commit order (see `at`)
    if (rate.allowed < allowed) [allowed, held] = [rate.allowed, "rate"];
  }
  const levels = taskWaitingPriorities(db, queue);
  let running: ClaimedRow[] = [];
  if (allowed > 0) {
    const base = { queue, worker: claim.worker, now, limit: allowed, levels };
    running = settings.group_concurrency === null
      ? taskClaim(db, { ...base, textArgs: claim.textArgs })
      : taskClaimGrouped(db, {
        ...base,
        groupLimit: settings.group_concurrency,
        textArgs: claim.textArgs,
      });
  }
  if (rate !== undefined && running.length > 0) {
    const window = rateRecord(rate.live, settings.rate_per_ms!, now, running.length);
    db.run("UPDATE apalis_queues SET rate_window = ? WHERE queue = ?", [
      JSON.stringify(window),
      queue,
    ]);
  }
  if (running.length >= wanted) return { running };
  // Short: the limit held it back, or a group was full, or nothing else is due.
  if (held === "rate" && running.length === allowed) {
    const reopens = rate!.reopensInMs ?? 1;
    return { running, nextDueInMs: Math.min(reopens, RATE_RECHECK_MAX_MS) };
  }
  if (held === "concurrency" && running.length === allowed) {
    return { running, nextDueInMs: LIMITED_RECHECK_MS };
  }
  const next = taskNextRunAt(db, queue, levels);
  if (next === undefined) return { running, nextDueInMs: null };
  // Due tasks left behind belong to full groups: look again when one may have room.
  const dueIn = next - now;
  return { running, nextDueInMs: dueIn <= 0 ? LIMITED_RECHECK_MS : dueIn };
}
