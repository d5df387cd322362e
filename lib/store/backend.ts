import type {
  Backend,
  ClaimedRow,
  CountRow,
  DurationsRow,
  FlushAck,
  FlushRequest,
  FlushResult,
  HeldAttempt,
  InsertOutcome,
  JoinPartRow,
  ListedTaskRow,
  LogFilter,
  LogRow,
  LostAttemptRow,
  NewTaskRow,
  OutcomeTotalRow,
  QueueLimitsChange,
  QueueSettingsRow,
  RetentionStep,
  RetentionStepResult,
  RunEffect,
  RunListFilter,
  RunListRow,
  RunRow,
  ScheduleAdvance,
  ScheduleDue,
  ScheduleRow,
  ScheduleUpsert,
  TaskAck as AckOfAttempt,
  TaskKill,
  TaskListFilter,
  TaskRow,
  TaskStatus,
  ThroughputRow,
  WorkerListRow,
  WorkerRegistration,
  WorkerRow,
} from "../backend/types.ts";
import { HOST_NAME, processAlive } from "../backend/process.ts";
import { KillListeners } from "../backend/kills.ts";
import { retryBusy } from "../sqlite/busy.ts";
import { fileProblemOf } from "../sqlite/file_error.ts";
import type { Database } from "../sqlite/types.ts";
import { ulid } from "../storage/ulid.ts";
import { onExternalCommit } from "./_commits.ts";
import { notifyPushed, onPushed } from "./_wakeup.ts";
import {
  joinAddPart,
  joinDeclare,
  joinEnqueueIfComplete,
  joinParts,
  runComplete,
  runGet,
  runInsert,
  runIsRunning,
  runList,
  runSetWorkflow,
  runTasks,
} from "./runs.ts";
import {
  deleteRuns,
  queuesWithFinishedRuns,
  readExpiredRuns,
  retentionRelease,
  retentionStep,
} from "./retention.ts";
import { migrate, schemaVersion, STARTED_COUNT_VERSION } from "./schema.ts";
import { SchemaProbe } from "../backend/schema_probe.ts";
import { logAppendMany, progressWriteMany, taskLogs } from "./reports.ts";
import {
  scheduleAdvance,
  scheduleDelete,
  scheduleDue,
  scheduleList,
  scheduleUpsert,
} from "./schedules.ts";
import {
  type Batch,
  type TaskAck,
  taskAck,
  taskAckMany,
  taskBackoff,
  taskClaim,
  taskClaimShared,
  taskCounts,
  taskDelete,
  taskGet,
  taskGetMany,
  taskInsert,
  taskInsertMany,
  taskKill,
  taskList,
  taskNextRunAt,
  taskOldestPending,
  taskRelease,
  taskReleaseAhead,
  taskRescueHeldBy,
  taskRescueOrphans,
  taskRetry,
  taskRetryAll,
  taskStartMany,
  taskVacuum,
  taskWaitingPriorities,
  type VacuumCursor,
} from "./tasks.ts";
import { OutcomeCounts, throughputPrune, throughputSince } from "./throughput.ts";
import { outcomeTotals, taskDurations } from "./metrics.ts";
import { taskInsertIfUnique } from "./unique.ts";
import { workerLostAttempts } from "./lost_attempts.ts";
import {
  claimWithinLimits,
  isRestricted,
  PAUSED_RECHECK_MS,
  queueSetLimits,
  queueSetPaused,
  queueSettingsGet,
  queueSettingsList,
  type StoredQueueSettings,
} from "./queues.ts";
import {
  workerGet,
  workerHeartbeat,
  workerList,
  workerListRunning,
  workerStop,
  workerUpsert,
} from "./workers.ts";

// One backend per connection: every storage on a connection shares its wake-ups.
const backends = new WeakMap<Database, SqliteBackend>();

/**
 * The SQLite backend: the queue's operations as SQLite statements (this folder's SQL), each
 * writing operation in one `BEGIN IMMEDIATE` transaction, retried while another connection holds
 * the write lock (up to the connection's `busyRetryMs`). Transactions are synchronous: nothing
 * else of this process runs on the connection while one is open.
 */
export class SqliteBackend implements Backend {
  readonly engine = "sqlite";
  /** The connection. */
  readonly db: Database;
  /** Whether the file counts starts: a worker may run on one nobody has upgraded yet. */
  #startsCounted = new SchemaProbe();
  #kills = new KillListeners();

  private constructor(db: Database) {
    this.db = db;
  }

  /** The backend of `db` (one per connection). */
  static of(db: Database): SqliteBackend {
    let backend = backends.get(db);
    if (!backend) backends.set(db, backend = new SqliteBackend(db));
    return backend;
  }

  get location(): string {
    return this.db.path;
  }

  get closed(): boolean {
    return this.db.closed;
  }

  setup(): Promise<number> {
    return Promise.resolve(migrate(this.db));
  }

  // --- inserts

  async taskInsertMany(rows: readonly NewTaskRow[]): Promise<InsertOutcome> {
    if (rows.length === 0) return { duplicate: null };
    const { db } = this;
    // A unique row takes statements of its own (lib/store/unique.ts); the rest as before.
    const unique = rows.length === 1
      ? rows[0]!.unique === undefined ? null : rows
      : rows.some((row) => row.unique !== undefined)
      ? rows.filter((row) => row.unique !== undefined)
      : null;
    const existing = unique === null ? undefined : new Map<string, string>();
    try {
      await retryBusy(
        db,
        // One plain row is one statement: no transaction around it (one push: 2 statements fewer).
        rows.length === 1 && unique === null
          ? () => taskInsertMany(db, rows)
          : () =>
            db.transaction(() => {
              if (unique === null) return taskInsertMany(db, rows);
              existing!.clear(); // a retry after a busy database starts over
              if (unique.length < rows.length) {
                taskInsertMany(db, rows.filter((row) => row.unique === undefined));
              }
              for (const row of unique) {
                const holder = taskInsertIfUnique(db, row);
                if (holder !== null) existing!.set(row.id, holder);
              }
            }),
        rows.length === 1
          ? `push task to queue '${rows[0]!.queue}'`
          : `push ${rows.length} tasks to queue '${rows[0]!.queue}'`,
      );
    } catch (error) {
      if (!isConstraintError(error)) throw error;
      const seen = new Set<string>();
      const duplicate = rows.find((row) => seen.size === seen.add(row.id).size) ??
        rows.find((row) => taskGet(db, row.id) !== undefined);
      if (!duplicate) throw error;
      return { duplicate: duplicate.id };
    }
    if (existing === undefined) {
      notifyPushed(db, rows[0]!.queue);
      return { duplicate: null };
    }
    if (existing.size < rows.length) notifyPushed(db, rows[0]!.queue);
    return { duplicate: null, existing };
  }

  /**
   * Inserts one task inside the caller's open transaction (`pushSync`). `duplicate`: its id
   * exists (throws nothing); `existing`: a unique row whose key is held, by that task.
   */
  insertInTransaction(row: NewTaskRow): { duplicate: boolean; existing?: string } {
    const { db } = this;
    if (row.unique === undefined) {
      try {
        taskInsert(db, row);
      } catch (error) {
        if (isConstraintError(error)) return { duplicate: true };
        throw error;
      }
      return { duplicate: false };
    }
    // Two statements (claim the key, insert): a savepoint undoes the claim when the insert
    // fails, whatever the caller then does with its transaction.
    db.exec("SAVEPOINT apalis_unique_push");
    let holder: string | null;
    try {
      holder = taskInsertIfUnique(db, row);
    } catch (error) {
      try {
        db.exec("ROLLBACK TO apalis_unique_push; RELEASE apalis_unique_push");
      } catch {
        // SQLite rolled the whole transaction back by itself (a full disk): nothing to undo.
      }
      if (isConstraintError(error)) return { duplicate: true };
      throw error;
    }
    db.exec("RELEASE apalis_unique_push");
    return holder === null ? { duplicate: false } : { duplicate: false, existing: holder };
  }

  async runStart(
    run: { id: string; queue: string; now?: number },
    first: NewTaskRow,
  ): Promise<{ duplicate: string | null }> {
    const { db } = this;
    try {
      await retryBusy(db, () =>
        db.transaction(() => {
          runInsert(db, { id: run.id, queue: run.queue, now: run.now ?? Date.now() });
          taskInsert(db, first);
        }), `start a workflow run on queue '${run.queue}'`);
    } catch (error) {
      if (isConstraintError(error)) return { duplicate: first.id };
      throw error;
    }
    notifyPushed(db, run.queue);
    return { duplicate: null };
  }

  // --- reads

  taskGet(id: string): Promise<TaskRow | undefined> {
    return Promise.resolve(taskGet(this.db, id));
  }

  taskGetMany(ids: readonly string[]): Promise<TaskRow[]> {
    return Promise.resolve(taskGetMany(this.db, ids));
  }

  taskList(filter: TaskListFilter): Promise<ListedTaskRow[]> {
    return Promise.resolve(taskList(this.db, filter));
  }

  taskLogs(id: string, filter: LogFilter): Promise<LogRow[]> {
    return Promise.resolve(taskLogs(this.db, id, filter));
  }

  taskCounts(queue?: string): Promise<CountRow[]> {
    return Promise.resolve(taskCounts(this.db, queue));
  }

  taskOldestDue(now = Date.now()): Promise<{ queue: string; run_at: number }[]> {
    return Promise.resolve(taskOldestPending(this.db, now));
  }

  workerList(
    queue: string | undefined,
    orphanAfterMs: number,
    now = Date.now(),
  ): Promise<WorkerListRow[]> {
    return Promise.resolve(
      workerList(this.db, queue).map((row) => ({
        ...row,
        alive: isWorkerAlive(row, now, orphanAfterMs),
      })),
    );
  }

  throughputSince(since: number, queue?: string): Promise<ThroughputRow[]> {
    return Promise.resolve(throughputSince(this.db, since, queue));
  }

  outcomeTotals(): Promise<OutcomeTotalRow[]> {
    return Promise.resolve(outcomeTotals(this.db));
  }

  taskDurations(
    queues: readonly string[],
    sample: number,
    boundsMs: readonly number[],
  ): Promise<DurationsRow[]> {
    return Promise.resolve(taskDurations(this.db, queues, sample, boundsMs));
  }

  runGet(id: string): Promise<RunRow | undefined> {
    return Promise.resolve(runGet(this.db, id));
  }

  runTasks(id: string): Promise<TaskRow[]> {
    return Promise.resolve(runTasks(this.db, id));
  }

  runList(filter: RunListFilter): Promise<RunListRow[]> {
    return Promise.resolve(runList(this.db, filter));
  }

  joinParts(runId: string, key: string): Promise<JoinPartRow[]> {
    return Promise.resolve(joinParts(this.db, runId, key));
  }

  timeNow(): Promise<number> {
    return Promise.resolve(Date.now());
  }

  // --- changes by hand

  taskRetry(id: string, now = Date.now()): Promise<boolean> {
    return this.#write(() => taskRetry(this.db, id, now), `retry task '${id}'`);
  }

  taskRetryAll(
    filter: { queue: string; status: TaskStatus; now?: number },
    batchSize: number,
  ): Promise<number> {
    const now = filter.now ?? Date.now();
    return this.#inBatches(
      `retry ${filter.status} tasks of queue '${filter.queue}'`,
      (after?: string) =>
        taskRetryAll(
          this.db,
          { queue: filter.queue, status: filter.status, now },
          batchSize,
          after,
        ),
      (changed) => {
        if (changed > 0) notifyPushed(this.db, filter.queue);
      },
    );
  }

  taskKill(id: string, error: string, now = Date.now()): Promise<boolean> {
    return this.#write(() => taskKill(this.db, id, error, now), `kill task '${id}'`);
  }

  taskDelete(id: string): Promise<boolean> {
    return this.#write(() => taskDelete(this.db, id), `delete task '${id}'`);
  }

  async taskVacuum(before: number, batchSize: number): Promise<number> {
    await this.#write(() => throughputPrune(this.db, before), "vacuum outcome counts");
    let deleted = await this.#inBatches(
      "vacuum finished tasks",
      (after?: VacuumCursor) => taskVacuum(this.db, before, batchSize, after),
    );
    // Runs go whole, as retention deletes them: finished, with every task finished by `before`.
    const cutoffs = { done: before, killed: before };
    for (const queue of queuesWithFinishedRuns(this.db)) {
      deleted += await this.#inBatches(
        "vacuum finished runs",
        (after?: readonly [number, string]) => {
          const found = readExpiredRuns(this.db, queue, batchSize, cutoffs, after);
          return {
            changed: deleteRuns(this.db, found.ids, cutoffs).tasks,
            next: found.next?.after ?? null,
          };
        },
      );
    }
    return deleted;
  }

  retentionStep(step: RetentionStep): Promise<RetentionStepResult> {
    // Reads outside the write lock; only the deletes (and the lease) take it.
    return retryBusy(
      this.db,
      () => retentionStep(this.db, step, step.now ?? Date.now()),
      `delete expired tasks of queue '${step.queue}'`,
    );
  }

  async retentionRelease(
    release: { queue: string; holder: string; nextInMs: number; now?: number },
  ): Promise<void> {
    await this.#write(
      () => retentionRelease(this.db, release, release.now ?? Date.now()),
      `release the retention lease of queue '${release.queue}'`,
    );
  }

  async runName(id: string, workflow: string, graph: string): Promise<void> {
    await this.#write(() => runSetWorkflow(this.db, id, workflow, graph), `name run '${id}'`);
  }

  // --- workers

  async workerRegister(worker: WorkerRegistration): Promise<WorkerRow | null> {
    const { db } = this;
    return await retryBusy(db, () =>
      db.transaction(() => {
        const now = worker.now ?? Date.now();
        const existing = workerGet(db, worker.name);
        if (existing && isWorkerAlive(existing, now, worker.orphanAfterMs)) return existing;
        // A previous incarnation that died leaves tasks under this name: take them back first.
        taskRescueHeldBy(db, worker.name, now);
        workerUpsert(db, {
          name: worker.name,
          queue: worker.queue,
          instance_id: worker.instanceId,
          host: worker.host,
          pid: worker.pid,
          started_at: now,
          last_seen: now,
          stopped_at: null,
          concurrency: worker.concurrency,
        });
        return null;
      }), `register worker '${worker.name}'`);
  }

  async workerHeartbeat(
    worker: { name: string; instanceId: string; orphanAfterMs: number; now?: number },
  ): Promise<number | null> {
    const { db } = this;
    return await retryBusy(db, () =>
      db.transaction(() => {
        const now = worker.now ?? Date.now();
        if (!workerHeartbeat(db, worker.name, worker.instanceId, now)) return null;
        for (const other of workerListRunning(db, worker.name)) {
          if (!isWorkerAlive(other, now, worker.orphanAfterMs)) {
            workerStop(db, other.name, other.instance_id, now);
          }
        }
        return taskRescueOrphans(db, now);
      }), `record the heartbeat of worker '${worker.name}'`);
  }

  async workerUnregister(
    worker: {
      name: string;
      instanceId: string;
      ahead: readonly { id: string; attempts: number }[];
      now?: number;
    },
  ): Promise<void> {
    const { db } = this;
    await retryBusy(db, () =>
      db.transaction(() => {
        taskRelease(db, worker.name);
        taskReleaseAhead(db, worker.name, worker.ahead);
        workerStop(db, worker.name, worker.instanceId, worker.now ?? Date.now());
      }), `unregister worker '${worker.name}'`);
  }

  workerLostAttempts(worker: string, held: readonly HeldAttempt[]): Promise<LostAttemptRow[]> {
    return new Promise((resolve) => resolve(workerLostAttempts(this.db, worker, held)));
  }

  async workerFlush(request: FlushRequest): Promise<FlushResult> {
    const { db } = this;
    const { queue, worker, claim } = request;
    const result = await retryBusy(db, () =>
      db.transaction((): FlushResult => {
        const now = request.now ?? Date.now();
        // Progress and log lines first: an attempt's last ones land with its outcome.
        if (request.progress) progressWriteMany(db, worker, request.progress, now);
        if (request.logs) logAppendMany(db, worker, request.logs);
        const plain: TaskAck[] = [];
        const withEffects: FlushAck[] = [];
        for (const item of request.acks) {
          if (item.run) withEffects.push(item);
          else plain.push(storedAck(item.ack));
        }
        // Starts are counted in the upsert that counts the acks (the same minute row, mostly).
        const counts = new OutcomeCounts();
        if (
          request.started &&
          this.#startsCounted.has(() => schemaVersion(db) >= STARTED_COUNT_VERSION)
        ) {
          counts.addStarted(queue, request.started, now);
        }
        const fenced = taskAckMany(db, worker, plain, counts);
        const replaced = withEffects.length > 0
          ? this.#ackWithEffects(withEffects, worker, now, fenced)
          : undefined;
        if (request.release) {
          taskRelease(db, worker);
          taskReleaseAhead(db, worker, request.release.ahead);
        }
        // The queue's settings: one primary-key lookup, and nothing more when it has none.
        const settings = queueSettingsGet(db, queue);
        if (isRestricted(settings)) {
          return this.#flushRestricted(request, settings!, now, fenced, replaced);
        }
        const started = taskStartMany(db, request.start, worker, now);
        let running: ClaimedRow[] = [];
        let ahead: ClaimedRow[] = [];
        let nextDueInMs: number | null | undefined;
        const wanted = claim.direct + claim.ahead;
        if (wanted > 0) {
          const base = { queue, worker, now, textArgs: claim.textArgs };
          // The queue's waiting priorities, read once for both claims and the next-due lookup
          // (see taskWaitingPriorities; a claim can only remove a priority, which that skips).
          const levels = taskWaitingPriorities(db, queue);
          if (claim.direct > 0) running = taskClaim(db, { ...base, limit: claim.direct, levels });
          if (claim.ahead > 0 && running.length === claim.direct) {
            ahead = taskClaim(db, { ...base, limit: claim.ahead, ahead: true, levels });
          }
          // A short claim means nothing else is due: learn when something will be. (A claim
          // ahead may also come back short because it skips tasks on their last attempt.)
          if (claim.direct > 0 && running.length < claim.direct) {
            const next = taskNextRunAt(db, queue, levels);
            nextDueInMs = next === undefined ? null : next - now;
          }
        }
        const flushed: FlushResult = { running, ahead, started, fenced, now };
        if (nextDueInMs !== undefined) flushed.nextDueInMs = nextDueInMs;
        if (replaced) flushed.replaced = replaced;
        this.#claimShared(request, flushed, now);
        return flushed;
      }), `record outcomes and claim tasks for worker '${worker}'`);
    // Workflow steps may have enqueued tasks: wake this process's fetchers.
    if (request.acks.some((item) => item.run)) notifyPushed(db, queue);
    return result;
  }

  /**
   * The rest of a flush for a queue that is paused or limited (inside its transaction): a paused
   * queue starts nothing and takes back the worker's `queued` tasks; a limited one starts them
   * and claims for free slots within its limits, never ahead.
   */
  #flushRestricted(
    request: FlushRequest,
    settings: StoredQueueSettings,
    now: number,
    fenced: Set<string>,
    replaced: FlushResult["replaced"],
  ): FlushResult {
    const { db } = this;
    const { queue, worker, claim } = request;
    const flushed: FlushResult = {
      running: [],
      ahead: [],
      started: new Set(),
      fenced,
      now,
      flow: settings.paused ? "paused" : "limited",
    };
    if (replaced) flushed.replaced = replaced;
    if (settings.paused) {
      taskRelease(db, worker);
      if (claim.direct > 0) flushed.nextDueInMs = PAUSED_RECHECK_MS;
    } else {
      flushed.started = taskStartMany(db, request.start, worker, now);
      if (claim.direct > 0) {
        const claimed = claimWithinLimits(db, settings, {
          queue,
          worker,
          now,
          wanted: claim.direct,
          textArgs: claim.textArgs,
        });
        flushed.running = claimed.running;
        if (claimed.nextDueInMs !== undefined) flushed.nextDueInMs = claimed.nextDueInMs;
      }
    }
    this.#claimShared(request, flushed, now);
    return flushed;
  }

  /** Claims for other queues' idle workers (a shared storage), inside the flush's transaction. */
  #claimShared(request: FlushRequest, flushed: FlushResult, now: number): void {
    if (!request.shared || request.shared.length === 0) return;
    // Queues that are paused or limited are left to their own workers' claims.
    const wants = request.shared.filter((want) =>
      !isRestricted(queueSettingsGet(this.db, want.queue))
    );
    const byQueue = new Map<string, ClaimedRow[]>();
    for (const row of taskClaimShared(this.db, { now, wants })) {
      let list = byQueue.get(row.queue);
      if (!list) byQueue.set(row.queue, list = []);
      list.push(row);
    }
    flushed.deliveries = byQueue;
  }

  /**
   * Acks with effects, one savepoint each: the ack and its effects commit together or not at
   * all. Effects that throw turn the attempt into a failure (`onEffectsFailed`); a problem of the
   * file itself fails the whole flush. Returns the acks recorded instead, by task id.
   */
  #ackWithEffects(
    items: readonly FlushAck[],
    worker: string,
    now: number,
    fenced: Set<string>,
  ): Map<string, { ack: AckOfAttempt; error: unknown }> {
    const { db } = this;
    const replaced = new Map<string, { ack: AckOfAttempt; error: unknown }>();
    for (const item of items) {
      try {
        db.transaction(() => {
          if (!taskAck(db, worker, storedAck(item.ack))) {
            fenced.add(item.ack.id);
            return;
          }
          this.#apply(item.run!.id, item.ack.id, item.run!.effects, now);
        });
      } catch (error) {
        if (fileProblemOf(error) !== undefined || !item.onEffectsFailed) throw error;
        const ack = item.onEffectsFailed(error);
        replaced.set(item.ack.id, { ack, error });
        if (!taskAck(db, worker, storedAck(ack))) fenced.add(ack.id);
      }
    }
    return replaced;
  }

  /** Runs a step's effects inside the open transaction (see `RunEffect`). */
  #apply(runId: string, taskId: string, effects: readonly RunEffect[], now: number): void {
    const { db } = this;
    let backoff: string | null | undefined;
    const inherited = () => backoff === undefined ? backoff = taskBackoff(db, taskId) : backoff;
    for (const effect of effects) {
      switch (effect.kind) {
        case "name":
          runSetWorkflow(db, runId, effect.workflow, effect.graph);
          break;
        case "complete":
          runComplete(db, runId, effect.result, now);
          break;
        case "enqueue":
          if (!runIsRunning(db, runId)) break;
          for (const task of effect.tasks) {
            taskInsert(db, {
              id: task.id ?? ulid(now),
              queue: task.queue,
              args: task.args,
              maxAttempts: task.maxAttempts,
              priority: task.priority,
              runAt: now + Math.max(0, Math.round(task.delayMs)),
              createdAt: now,
              meta: task.meta,
              backoff: inherited(),
              runId,
              step: task.step,
            });
          }
          break;
        case "declare":
          if (runIsRunning(db, runId)) {
            joinDeclare(db, { ...effect.join, runId, backoff: inherited() });
          }
          break;
        case "feed": {
          const { join } = effect;
          joinDeclare(db, { ...join, runId, backoff: inherited() });
          joinAddPart(db, { runId, key: join.key, slot: effect.slot, result: effect.result });
          const parts = joinParts(db, runId, join.key);
          if (parts.length === join.expected) {
            const args = effect.combine(parts.map((part) => part.result));
            joinEnqueueIfComplete(db, { runId, key: join.key, now, args });
          }
          break;
        }
        case "finish": {
          joinAddPart(db, { runId, key: effect.key, slot: effect.slot, result: effect.result });
          const parts = joinParts(db, runId, effect.key);
          if (parts.length === effect.expected && runIsRunning(db, runId)) {
            runComplete(db, runId, effect.combine(parts.map((part) => part.result)), now);
          }
          break;
        }
      }
    }
  }

  // --- flow control

  queueSettingsList(): Promise<QueueSettingsRow[]> {
    return Promise.resolve(
      hasQueueSettings(this.db) ? queueSettingsList(this.db).map(publicSettings) : [],
    );
  }

  queueSettingsGet(queue: string): Promise<QueueSettingsRow | undefined> {
    if (!hasQueueSettings(this.db)) return Promise.resolve(undefined);
    const row = queueSettingsGet(this.db, queue);
    return Promise.resolve(row && publicSettings(row));
  }

  async queueSetLimits(
    queue: string,
    change: QueueLimitsChange,
    now = Date.now(),
  ): Promise<QueueSettingsRow> {
    const row = await this.#write(
      () => queueSetLimits(this.db, queue, change, now),
      `set the limits of queue '${queue}'`,
    );
    notifyPushed(this.db, queue); // looser limits: idle workers of this process claim again
    return publicSettings(row);
  }

  async queueSetPaused(
    queue: string,
    paused: boolean,
    now = Date.now(),
  ): Promise<QueueSettingsRow> {
    const row = await this.#write(
      () => queueSetPaused(this.db, queue, paused, now),
      `${paused ? "pause" : "resume"} queue '${queue}'`,
    );
    notifyPushed(this.db, queue);
    return publicSettings(row);
  }

  // --- cron schedules

  async scheduleUpsert(
    schedule: ScheduleUpsert,
  ): Promise<{ written: true } | { written: false; queue: string }> {
    const owner = await this.#write(
      () => scheduleUpsert(this.db, schedule),
      `schedule '${schedule.name}' on queue '${schedule.queue}'`,
    );
    return owner === null ? { written: true } : { written: false, queue: owner };
  }

  scheduleDelete(name: string, queue: string): Promise<boolean> {
    return this.#write(
      () => scheduleDelete(this.db, name, queue),
      `unschedule '${name}' of queue '${queue}'`,
    );
  }

  scheduleList(queue?: string): Promise<ScheduleRow[]> {
    return Promise.resolve(scheduleList(this.db, queue));
  }

  scheduleDue(queue: string, limit: number, now = Date.now()): Promise<ScheduleDue> {
    return Promise.resolve({ now, ...scheduleDue(this.db, queue, limit, now) });
  }

  async scheduleAdvance(advance: ScheduleAdvance): Promise<boolean> {
    const moved = await this.#write(
      () => scheduleAdvance(this.db, advance),
      `enqueue the due ticks of schedule '${advance.name}'`,
    );
    if (moved && advance.tasks.length > 0) notifyPushed(this.db, advance.queue);
    return moved;
  }

  // --- wake-ups

  onPushed(queue: string, listener: () => void): () => void {
    return onPushed(this.db, queue, listener);
  }

  notifyPushed(queue: string): void {
    notifyPushed(this.db, queue);
  }

  onExternalCommit(listener: () => void): () => void {
    return onExternalCommit(this.db, listener);
  }

  onKilled(listener: (kill: TaskKill) => void): () => void {
    return this.#kills.on(listener);
  }

  notifyKilled(kill: TaskKill): void {
    this.#kills.notify(kill);
  }

  onExternalKill(): () => void {
    return () => {}; // no notices between processes: the workers' checks find kills
  }

  isStorageFull(error: unknown): boolean {
    return fileProblemOf(error) === "full";
  }

  close(): Promise<void> {
    if (!this.db.closed) this.db.close();
    return Promise.resolve();
  }

  /** One write in its own transaction, retried while the database is locked. */
  #write<T>(write: () => T, action: string): Promise<T> {
    const { db } = this;
    return retryBusy(db, () => db.transaction(write), action);
  }

  /**
   * Runs `step` in one transaction per batch until it reports no next one, letting this
   * process's timers and I/O (and other processes' writers) in between; returns the sum of what
   * changed.
   */
  async #inBatches<Cursor>(
    action: string,
    step: (after?: Cursor) => Batch<Cursor>,
    afterEach?: (changed: number) => void,
  ): Promise<number> {
    let changed = 0;
    let after: Cursor | undefined;
    while (true) {
      const batch = await this.#write(() => step(after), action);
      changed += batch.changed;
      afterEach?.(batch.changed);
      if (batch.next === null) return changed;
      after = batch.next;
      // A macrotask, not a microtask: timers and I/O of this process run between batches.
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }
}

/** The settings without the rate window's internals. */
function publicSettings(row: StoredQueueSettings): QueueSettingsRow {
  const { rate_window: _window, ...settings } = row;
  return settings;
}

/**
 * Whether the file has the settings table: reads of a file not yet upgraded (opened read-only
 * by the CLI or the board) find no settings rather than an error.
 */
function hasQueueSettings(db: Database): boolean {
  return (db.get<{ n: number }>(
    "SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table' AND name = 'apalis_queues'",
  )?.n ?? 0) > 0;
}

/** The ack as the SQL records it: the retry time from the finish time and the delay. */
function storedAck(ack: AckOfAttempt): TaskAck {
  return {
    id: ack.id,
    queue: ack.queue,
    attempt: ack.attempt,
    status: ack.status,
    result: ack.result,
    error: ack.error,
    runAt: ack.retryInMs === null ? null : ack.doneAt + ack.retryInMs,
    doneAt: ack.doneAt,
    ...(ack.inRun ? { inRun: true } : {}),
  };
}

/**
 * Whether a registered worker is alive: not stopped, its heartbeat younger than `orphanAfterMs`,
 * and, on this host, its process still there (a file lives on one host).
 */
function isWorkerAlive(row: WorkerRow, now: number, orphanAfterMs: number): boolean {
  if (row.stopped_at !== null) return false;
  if (now - row.last_seen >= orphanAfterMs) return false;
  if (row.host === HOST_NAME && !processAlive(row.pid)) return false;
  return true;
}

function isConstraintError(error: unknown): boolean {
  return error instanceof Error && /UNIQUE constraint failed|PRIMARY KEY/i.test(error.message);
}
