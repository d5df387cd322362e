import process from "node:process";
import { setImmediate } from "node:timers";
import type { ClaimedRow, FlushAck, FlushRequest, RunEffect, TaskAck } from "../backend/types.ts";
import { HOST_NAME, PROCESS_ID } from "../backend/process.ts";
import {
  type Backoff,
  backoffDelay,
  type BackoffOptions,
  DEFAULT_BACKOFF,
} from "../storage/backoff.ts";
import { describeError, describeValue, messageOf, serializeError } from "../storage/error_text.ts";
import type { Storage } from "../storage/storage.ts";
import { ulid } from "../storage/ulid.ts";
import { isExactText } from "../storage/codec.ts";
import { type LongTimer, MAX_TIMER_MS, setLongInterval, setLongTimeout } from "../time/timers.ts";
import { AttemptWatch } from "./attempt_watch.ts";
import { TaskContext } from "./context.ts";
import { Pace } from "./pace.ts";
import { AttemptReports, ReportBuffer } from "./reports.ts";
import { RetentionSweeper } from "./retention_sweeper.ts";
import { ScheduleTicker } from "./schedule_ticker.ts";
import { Transition } from "./transition.ts";
import {
  AbortError,
  type AttemptLostError,
  KilledError,
  NonError,
  ShutdownError,
  TaskTimeoutError,
  WorkerFatalError,
  WorkerNameTakenError,
} from "./errors.ts";
import type { EventListener, TaskEventInfo, WorkerContext, WorkerEvent } from "./events.ts";

/** A task handler: its return value is stored as the task's result. */
export type Handler<T> = (args: T, ctx: TaskContext) => unknown;

/**
 * Middleware around the handler. Call `next()` to go on (optionally with other arguments);
 * what it returns is the task's result. Throwing fails the attempt.
 */
export type Middleware<T> = (
  args: T,
  ctx: TaskContext,
  next: (args?: T) => Promise<unknown>,
) => Promise<unknown>;

/** Everything a {@linkcode Worker} needs; assembled by `WorkerBuilder`. */
export interface WorkerOptions<T> {
  name: string;
  storage: Storage<T>;
  handler: Handler<T>;
  concurrency: number;
  timeoutMs: number | undefined;
  /** The worker's cap on attempts (the task's own `maxAttempts` still applies). */
  maxAttempts?: number | undefined;
  backoff: Backoff;
  data: ReadonlyMap<unknown, unknown>;
  middleware: readonly Middleware<T>[];
  listeners: readonly EventListener[];
  shutdownTimeoutMs: number;
  handleSignals: boolean;
  /** The host name to register under; this machine's when undefined. */
  host?: string | undefined;
}

interface InFlight {
  row: ClaimedRow;
  attempt: number;
  /** Created on first use of `ctx.signal`: most handlers never read it. */
  controller: AbortController | undefined;
  abortReason: unknown;
  startedAt: number;
  /** The attempt's timeout, if the worker has one. */
  timer: LongTimer | undefined;
  settled: boolean;
  /** What the handler reported (`ctx.progress`, `ctx.log`): made on first use. */
  reports: AttemptReports | undefined;
}

/** What a flush's claim did. */
interface Claimed {
  /** It took at least one task. */
  found: boolean;
  /** It took all it asked for: more may be due. */
  full: boolean;
}

const NOTHING_CLAIMED: Claimed = { found: false, full: false };

/**
 * Tasks claimed ahead start from memory only while the worker's last flush is this recent: a
 * pause or limits set since then are learnt first (the next flush gives them back).
 */
const AHEAD_FRESH_MS = 1000;

/** A worker claims ahead what it expects to start within this long (from its recent pace). */
const AHEAD_WINDOW_MS = 10;
/** Its pace is sampled over at least this long. */
const PACE_SAMPLE_MS = 10;

/** How an attempt ended: with a value, or with an error (`kill`: no retry). */
type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown; kill?: boolean };

interface PendingAck {
  ack: TaskAck;
  /** Writes that must commit with this ack (a workflow's next steps), if any. */
  effects: readonly RunEffect[] | undefined;
  entry: InFlight;
  durationMs: number;
  result: unknown;
  error: unknown;
}

/**
 * Runs a handler over a queue: claims due tasks, runs up to `concurrency` at once, records each
 * outcome (with persisted retry backoff), heart-beats, rescues orphans, and shuts down gracefully.
 * Build one with `WorkerBuilder`.
 */
export class Worker<T = unknown> {
  /** The worker's name. */
  readonly name: string;
  #context: WorkerContext;
  #o: WorkerOptions<T>;
  #instanceId = ulid();
  #run: ((args: T, ctx: TaskContext) => unknown) | undefined;
  /**
   * Tasks another worker of a shared storage claimed `queued` for this one: a start writes them.
   */
  #buffer: ClaimedRow[] = [];
  /** Tasks claimed `running` ahead of a free slot: they start from memory as slots free up. */
  #ahead: ClaimedRow[] = [];
  /** How fast handlers finish: how much to claim ahead. */
  #pace = new Pace(AHEAD_WINDOW_MS, PACE_SAMPLE_MS);
  #inFlight = new Map<string, InFlight>();
  #acks: PendingAck[] = [];
  /** Attempts started since the last flush: the next one adds them to the queue's count. */
  #startedSinceFlush = 0;
  /** Progress and log lines not written yet: they ride along with flushes. */
  #reports = new ReportBuffer(() => this.#poke());
  #state: "new" | "running" | "stopping" | "exited" = "new";
  #wake: (() => void) | undefined;
  #woken = false;
  #exited: Promise<void> | undefined;
  #fatal: unknown;
  #idle = false;
  /** When the next waiting task becomes due, learnt when a claim came back short. */
  #nextDue: number | undefined;
  #abortedAll = false;
  #stragglerTimer: ReturnType<typeof setTimeout> | undefined;
  /** Stops listening for other processes' commits, while listening. */
  #unwatch: (() => void) | undefined;
  /** Whether the queue was paused or limited at the last flush (see `FlushResult.flow`). */
  #flow: "paused" | "limited" | undefined;
  /** When the last flush succeeded (`performance.now()`). */
  #flushedAt = performance.now();
  /** Finds running attempts taken from this worker (a kill, a rescue): see `#lost`. */
  #attempts: AttemptWatch;

  /** @param options the assembled settings (see `WorkerBuilder`) */
  constructor(options: WorkerOptions<T>) {
    this.#o = options;
    this.name = options.name;
    this.#context = Object.freeze({ name: this.name, stop: () => void this.stop() });
    this.#attempts = new AttemptWatch({
      backend: options.storage.backend,
      worker: this.name,
      running: () =>
        Array.from(this.#inFlight.values(), ({ row, attempt, startedAt }) => ({
          id: row.id,
          attempt,
          startedAt,
        })),
      lost: (id, attempt, reason) => this.#lost(id, attempt, reason),
      onError: (error) => this.#emit({ type: "error", error }),
    });
  }

  /** Runs until {@linkcode Worker.stop}, SIGINT or SIGTERM; rejects if the worker cannot go on. */
  run(): Promise<void> {
    if (this.#state !== "new") {
      throw new Error(`Cannot run worker '${this.name}': it has already run`);
    }
    this.#state = "running";
    this.#exited = this.#main();
    return this.#exited;
  }

  /** Runs until `until` resolves (a promise) or aborts (a signal), then stops gracefully. */
  runUntil(until: AbortSignal | Promise<unknown>): Promise<void> {
    const done = this.run();
    if (until instanceof AbortSignal) {
      if (until.aborted) void this.stop();
      else until.addEventListener("abort", () => void this.stop(), { once: true });
    } else {
      until.then(() => this.stop(), () => this.stop());
    }
    return done;
  }

  /** Starts a graceful shutdown; resolves when the worker has exited. */
  stop(): Promise<void> {
    if (this.#state === "new") {
      this.#state = "exited";
      return Promise.resolve();
    }
    if (this.#state === "running") {
      this.#state = "stopping";
      this.#emit({ type: "stop" });
      this.#poke();
    }
    return this.#exited!.catch(() => {});
  }

  /** How many handlers are running now. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  async #main(): Promise<void> {
    const { storage, handleSignals } = this.#o;
    this.#run = compose(this.#o.middleware, this.#o.handler);
    // A worker of a shared storage joins its one fetcher: its writes also claim for the others.
    const leave = storage.shared?.join({
      queue: storage.queue,
      worker: this.name,
      wants: () => {
        // Only an idle worker is served: a busy one (tasks running or held ahead, outcomes to
        // record) claims for itself at its next write, moments later.
        const busy = this.#inFlight.size + this.#ahead.length + this.#acks.length > 0;
        if (this.#state !== "running" || busy) return 0;
        return Math.max(0, this.#o.concurrency - this.#buffer.length);
      },
      deliver: (rows) => {
        this.#buffer.push(...rows);
        this.#poke();
      },
    });
    try {
      await this.#register();
    } catch (error) {
      leave?.();
      throw error;
    }
    const unsubscribe = storage.backend.onPushed(storage.queue, () => this.#poke());
    this.#attempts.start();
    const heartbeat = setLongInterval(() => void this.#heartbeat(), storage.config.keepAliveMs);
    // The queue's cron schedules: this worker enqueues their due ticks (with every other worker
    // of the queue; the database lets one of them enqueue each tick).
    const schedules = new ScheduleTicker(
      storage as Storage<unknown>,
      (error) => this.#emit({ type: "error", error }),
    );
    schedules.start();
    // The queue's retention: this worker deletes expired finished tasks when it holds the
    // queue's lease (one worker at a time across processes and hosts).
    const retention = new RetentionSweeper(
      storage as Storage<unknown>,
      `${this.name} ${this.#instanceId}`,
      (event) => this.#emit(event),
      (error) => this.#emit({ type: "error", error }),
    );
    retention.start();
    const onSignal = () => {
      if (this.#state === "stopping") this.#abortAll();
      void this.stop();
    };
    if (handleSignals) {
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
    }
    this.#emit({ type: "start" });
    let graceTimer: LongTimer | undefined;
    try {
      await this.#heartbeat();
      await this.#loop((stopping) => {
        if (stopping && graceTimer === undefined) {
          graceTimer = setLongTimeout(() => this.#abortAll(), this.#o.shutdownTimeoutMs);
        }
      });
    } finally {
      graceTimer?.clear();
      clearTimeout(this.#stragglerTimer);
      this.#reports.stop();
      heartbeat.clear();
      await schedules.stop();
      await retention.stop();
      unsubscribe();
      this.#attempts.stop();
      this.#watchCommits(false);
      leave?.();
      if (handleSignals) {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
      await this.#unregister();
      this.#state = "exited";
      this.#emit(
        this.#fatal === undefined ? { type: "exit" } : { type: "exit", error: this.#fatal },
      );
    }
    if (this.#fatal !== undefined) throw this.#fatal;
  }

  /** The write loop: group-commits acks, claims and starts, then waits for something to do. */
  async #loop(onStopping: (stopping: boolean) => void): Promise<void> {
    let foundWork = true;
    let failures = 0;
    const ticker = this.#o.storage.config.pollStrategy.ticker();
    while (true) {
      const stopping = this.#state !== "running";
      onStopping(stopping);
      if (stopping && this.#inFlight.size === 0 && this.#acks.length === 0) return;
      let claim: Claimed;
      try {
        claim = await this.#flush(stopping);
        failures = 0;
      } catch (error) {
        if (this.#o.storage.backend.closed) {
          this.#fail(
            new WorkerFatalError(`Worker '${this.name}' lost its database`, { cause: error }),
          );
          return;
        }
        // Past the shutdown timeout, outcomes that still cannot be written (a full disk) are
        // given up: their tasks stay `running` in the file and orphan rescue runs them again.
        if (stopping && this.#abortedAll && this.#inFlight.size === 0) {
          const unwritten = this.#acks.length;
          this.#fail(
            new WorkerFatalError(
              `Worker '${this.name}' stopped without recording ${unwritten} outcome${
                unwritten === 1 ? "" : "s"
              }: ${messageOf(error)}; their tasks stay running and run again after orphan rescue`,
              { cause: error },
            ),
          );
          return;
        }
        this.#emit({ type: "error", error });
        failures++;
        await sleep(Math.min(5000, 50 * 2 ** failures));
        continue;
      }
      if (this.#fatal !== undefined) return;
      if (stopping && this.#inFlight.size === 0 && this.#acks.length === 0) return;
      // The strategy hears at its next wait whether any poll found work since its last one (so a
      // backoff resets).
      if (claim.found) foundWork = true;
      const free = this.#o.concurrency - this.#inFlight.size;
      // Other processes' commits matter only to a worker that may run short of tasks.
      if (claim.full) this.#watchCommits(false);
      else if (free > 0 && !stopping && this.#watchCommits(true)) continue; // missed commits?
      // A full claim means more may be due: claim again at once while slots are free. While they
      // are busy, the next flush waits for a handler to finish (quick tasks that finish in the
      // same turn then commit together).
      if (claim.full && free > 0 && this.#acks.length === 0) continue;
      if (free > 0 && !stopping && !claim.found && this.#inFlight.size === 0 && !this.#idle) {
        this.#idle = true;
        this.#emit({ type: "idle" });
      }
      const asked = await this.#waitForWork(free > 0 && !stopping ? ticker : undefined, foundWork);
      if (asked) foundWork = false;
    }
  }

  /**
   * Waits for an ack, a push, a stop, the poll tick or the next scheduled task. Returns whether
   * the poll strategy was asked (it heard `foundWork`).
   */
  async #waitForWork(
    ticker: { wait(found: boolean, signal: AbortSignal): Promise<void> } | undefined,
    foundWork: boolean,
  ): Promise<boolean> {
    if (this.#woken) {
      this.#woken = false;
      await yieldToEventLoop();
      return false;
    }
    const controller = new AbortController();
    const woken = new Promise<void>((resolve) => {
      this.#wake = () => {
        this.#wake = undefined;
        resolve();
      };
    });
    const waits: Promise<void>[] = [woken];
    let dueTimer: ReturnType<typeof setTimeout> | undefined;
    if (ticker) {
      waits.push(ticker.wait(foundWork, controller.signal));
      const delay = this.#nextDue === undefined
        ? undefined
        : this.#nextDue - this.#o.storage.clock.now();
      if (delay !== undefined && delay > 0) {
        // Clamped to what one timer holds: waking early only claims nothing and waits again.
        const wait = Math.min(delay, MAX_TIMER_MS);
        waits.push(new Promise((resolve) => dueTimer = setTimeout(resolve, wait)));
      }
    }
    await Promise.race(waits);
    clearTimeout(dueTimer);
    controller.abort();
    this.#wake = undefined;
    // Let handlers that finish in the same turn queue their acks: they commit together.
    await yieldToEventLoop();
    return ticker !== undefined;
  }

  /**
   * Starts or stops listening for other processes' commits (pushes by other processes wake the
   * worker within milliseconds). A busy worker does not listen: every commit of every process
   * costs each listener a file event. Returns true when it started listening, as a commit made
   * just before may have been missed: the caller claims once more.
   */
  #watchCommits(on: boolean): boolean {
    if (!on) {
      this.#unwatch?.();
      this.#unwatch = undefined;
      return false;
    }
    if (this.#unwatch) return false;
    this.#unwatch = this.#o.storage.backend.onExternalCommit(() => {
      if (this.#inFlight.size < this.#o.concurrency) this.#poke();
    }, this.#o.storage.queue);
    return true;
  }

  /** Wakes the loop (a push, an ack, a stop). */
  #poke(): void {
    if (this.#wake) this.#wake();
    else this.#woken = true;
  }

  /**
   * One write transaction: record finished attempts, release what was claimed ahead when
   * stopping, start tasks another worker of a shared storage claimed for this one (`queued`) in
   * free slots, and claim due tasks: straight into `running` for the slots still free, plus
   * those to start ahead (see `Pace`). A worker of a shared storage then claims, in the same
   * transaction, for the free slots of the other queues' workers. Returns what the claim did.
   */
  async #flush(stopping: boolean): Promise<Claimed> {
    const { storage, concurrency } = this.#o;
    const { config } = storage;
    const acks = this.#acks;
    this.#acks = [];
    if (!stopping) this.#startAhead();
    // A paused or limited queue: what is held ahead goes back (it would start unchecked).
    const giveBack = stopping ||
      (this.#flow !== undefined && (this.#ahead.length > 0 ||
        (this.#flow === "paused" && this.#buffer.length > 0)));
    const free = stopping ? 0 : concurrency - this.#inFlight.size;
    const fromBuffer = giveBack ? [] : this.#buffer.slice(0, free);
    const direct = free - fromBuffer.length; // slots no buffered task covers
    const ahead = stopping || this.#flow !== undefined
      ? 0
      : this.#pace.aheadWanted(config.bufferSize, this.#ahead.length);
    const wanted = direct + ahead;
    const aheadToRelease = giveBack ? this.#ahead : [];
    const release = giveBack && (this.#buffer.length > 0 || aheadToRelease.length > 0);
    const shared = stopping ? undefined : storage.shared;
    if (
      acks.length === 0 && wanted === 0 && !release && fromBuffer.length === 0 &&
      !this.#reports.due
    ) {
      return NOTHING_CLAIMED; // nothing to write
    }
    const request: FlushRequest = {
      queue: storage.queue,
      worker: this.name,
      acks: acks.map((pending) => this.#flushAck(pending)),
      start: fromBuffer.map((row) => row.id),
      claim: { direct, ahead, textArgs: storage.codec.decodeText !== undefined },
    };
    const now = storage.databaseNow();
    if (now !== undefined) request.now = now;
    if (release) request.release = { ahead: aheadToRelease };
    // Progress and log lines ride along (written before the acks: an attempt's last ones too).
    const reports = this.#reports.take();
    if (reports?.progress) request.progress = reports.progress;
    if (reports?.logs) request.logs = reports.logs;
    const wants = shared?.wants(storage.queue);
    if (wants && wants.length > 0) request.shared = wants;
    const startedCount = this.#startedSinceFlush;
    if (startedCount > 0) request.started = startedCount;
    this.#startedSinceFlush = 0;
    let outcome: Awaited<ReturnType<typeof storage.backend.workerFlush>>;
    try {
      outcome = await storage.backend.workerFlush(request);
    } catch (error) {
      // Nothing was written: keep the outcomes for the next try. On a full disk, first record
      // those that still fit, one by one, so that a large result does not hold back the others.
      if (reports) this.#reports.restore(reports);
      const kept = storage.backend.isStorageFull(error) ? await this.#ackEach(acks) : acks;
      this.#acks = kept.concat(this.#acks);
      this.#startedSinceFlush += startedCount;
      throw error;
    }
    this.#flushedAt = performance.now();
    const { running, started: resumed, fenced, deliveries } = outcome;
    const claimedAhead = outcome.ahead;
    const flowChanged = outcome.flow !== this.#flow;
    this.#flow = outcome.flow;
    if (outcome.nextDueInMs !== undefined) {
      this.#nextDue = outcome.nextDueInMs === null
        ? undefined
        : storage.clock.now() + outcome.nextDueInMs;
    } else if (direct > 0) {
      this.#nextDue = undefined;
    }
    if (shared && deliveries) shared.deliver(deliveries, storage.queue);
    // Released (a stop, a pause, limits) or taken back by a paused queue's flush: gone.
    const dropped = release || outcome.flow === "paused";
    this.#buffer = dropped ? [] : this.#buffer.slice(fromBuffer.length);
    if (release) this.#ahead = [];
    if (claimedAhead.length > 0) this.#ahead.push(...claimedAhead);
    if (flowChanged && this.#flow !== undefined && this.#ahead.length > 0) this.#poke();
    this.#replaceFailedEffects(acks, outcome.replaced);
    for (const pending of acks) this.#report(pending, fenced.has(pending.ack.id));
    const started: ClaimedRow[] = [];
    for (const row of fromBuffer) {
      if (!resumed.has(row.id)) continue; // killed or rescued while buffered
      row.attempts++;
      row.status = "running";
      row.lock_at = outcome.now;
      started.push(row);
    }
    started.push(...running);
    if (started.length > 0) this.#idle = false;
    for (const row of started) this.#execute(row);
    if (!stopping) this.#startAhead(); // those held back while the last flush was not recent
    const claimed = running.length + claimedAhead.length;
    return { found: claimed > 0, full: wanted > 0 && claimed >= wanted };
  }

  /** What a flush records for an outcome: the ack, and a workflow step's effects with it. */
  #flushAck(pending: PendingAck): FlushAck {
    const { effects, entry } = pending;
    if (effects === undefined) return { ack: pending.ack };
    return {
      ack: pending.ack,
      run: { id: entry.row.run_id!, effects },
      // Effects that throw turn the attempt into a failure (retried with backoff).
      onEffectsFailed: (error) =>
        this.#failure(entry, failureOf(error, "threw"), this.#o.storage.clock.now(), false),
    };
  }

  /** Takes in the acks a flush recorded instead of those whose effects failed. */
  #replaceFailedEffects(
    acks: readonly PendingAck[],
    replaced: ReadonlyMap<string, { ack: TaskAck; error: unknown }> | undefined,
  ): void {
    if (!replaced) return;
    for (const pending of acks) {
      const failure = replaced.get(pending.ack.id);
      if (!failure) continue;
      pending.ack = failure.ack;
      pending.error = failureOf(failure.error, "threw");
      pending.result = undefined;
      pending.effects = undefined;
    }
  }

  /**
   * Starts tasks claimed ahead in the slots that are free, unless the queue is paused or limited
   * (they go back at the next flush) or the last flush is not recent (the next one may learn so).
   */
  #startAhead(): void {
    if (this.#ahead.length === 0) return;
    if (this.#flow !== undefined || performance.now() - this.#flushedAt > AHEAD_FRESH_MS) return;
    while (this.#ahead.length > 0 && this.#inFlight.size < this.#o.concurrency) {
      this.#execute(this.#ahead.shift()!);
    }
  }

  #report(pending: PendingAck, fenced: boolean): void {
    if (this.#o.listeners.length === 0) return;
    const { ack, entry } = pending;
    const info: TaskEventInfo = {
      taskId: ack.id,
      queue: entry.row.queue,
      attempt: ack.attempt,
      maxAttempts: entry.row.max_attempts,
      durationMs: pending.durationMs,
    };
    if (fenced) {
      this.#emit({
        type: "error",
        task: info,
        error: new Error(
          `Outcome of task '${ack.id}' attempt ${ack.attempt} discarded: the task was killed or rescued meanwhile`,
        ),
      });
    } else if (ack.status === "done") {
      this.#emit({ type: "success", task: info, result: pending.result });
    } else {
      const event: WorkerEvent = {
        type: "error",
        task: info,
        error: pending.error,
        status: ack.status,
      };
      if (ack.status === "failed" && ack.retryInMs !== null) {
        event.retryAt = ack.doneAt + ack.retryInMs;
      }
      this.#emit(event);
    }
  }

  /** Runs a started task (`row` is as the start wrote it: `running`, attempt counted). */
  #execute(row: ClaimedRow): void {
    const { storage } = this.#o;
    const entry: InFlight = {
      row,
      attempt: row.attempts,
      controller: undefined,
      abortReason: undefined,
      startedAt: Date.now(),
      timer: undefined,
      settled: false,
      reports: undefined,
    };
    this.#inFlight.set(row.id, entry);
    this.#startedSinceFlush++;
    this.#attempts.started();
    const { codec } = storage;
    if (
      typeof row.args === "string" &&
      !(codec.decodeText && isExactText(row.args, row.args_bytes ?? -1))
    ) {
      // Text that does not spell the stored bytes exactly: decode the bytes, read again.
      storage.backend.taskGet(row.id).then(
        (stored) => {
          if (stored === undefined) throw new Error("the task no longer exists");
          return codec.decode(stored.args);
        },
      ).then(
        (args) => this.#begin(entry, args as T),
        (error) => this.#undecodable(entry, error),
      );
      return;
    }
    let args: T;
    try {
      args =
        (typeof row.args === "string" ? codec.decodeText!(row.args) : codec.decode(row.args)) as T;
    } catch (error) {
      this.#undecodable(entry, error);
      return;
    }
    this.#begin(entry, args);
  }

  /** A task whose arguments cannot be decoded is killed: no attempt can do better. */
  #undecodable(entry: InFlight, error: unknown): void {
    const decodeError = new AbortError(
      `Cannot decode the task's arguments with the ${this.#o.storage.codec.name} codec: ${
        messageOf(error)
      }`,
      { cause: error },
    );
    decodeError.name = "DecodeError";
    this.#settle(entry, { ok: false, error: decodeError, kill: true });
  }

  /** Runs the handler on a started task's decoded arguments. */
  #begin(entry: InFlight, args: T): void {
    if (entry.settled) return; // taken from this worker while its arguments were read
    const { timeoutMs } = this.#o;
    const { row } = entry;
    if (timeoutMs !== undefined) {
      entry.timer = setLongTimeout(() => {
        const error = new TaskTimeoutError(timeoutMs);
        abortEntry(entry, error);
        this.#settle(entry, { ok: false, error });
      }, timeoutMs);
    }
    let meta: Record<string, unknown> = {};
    try {
      meta = row.meta === null ? {} : JSON.parse(row.meta);
    } catch {
      // Metadata is informative; a bad value must not stop the task.
    }
    const ctx = new TaskContext({
      taskId: row.id,
      attempt: entry.attempt,
      maxAttempts: row.max_attempts,
      queue: row.queue,
      priority: row.priority,
      meta,
      signal: () => signalOf(entry),
      worker: this.#context,
      data: this.#o.data,
      runId: row.run_id ?? undefined,
      step: row.step ?? undefined,
      reports: () =>
        entry.reports ??= new AttemptReports(
          row.id,
          entry.attempt,
          this.#reports,
          () => this.#o.storage.clock.now(),
        ),
    });
    let result: Promise<unknown>;
    try {
      result = Promise.resolve(this.#run!(args, ctx));
    } catch (error) {
      this.#settle(entry, { ok: false, error: failureOf(error, "threw") });
      return;
    }
    result.then(
      (value) => this.#settle(entry, { ok: true, value }),
      (error) => this.#settle(entry, { ok: false, error: failureOf(error, "rejected with") }),
    );
  }

  #settle(entry: InFlight, outcome: Outcome): void {
    if (entry.settled) return;
    entry.settled = true;
    entry.timer?.clear();
    entry.reports?.close();
    this.#inFlight.delete(entry.row.id);
    let pending: PendingAck;
    try {
      pending = this.#outcome(entry, outcome);
    } catch (cause) {
      // Recording an outcome must never throw (the task would stay `running` and the process
      // could crash): whatever could not be read or encoded fails the attempt instead.
      const error = new Error(
        `Cannot record the outcome of task '${entry.row.id}': ${describeError(cause)}`,
        { cause },
      );
      pending = {
        ack: this.#failure(entry, error, this.#o.storage.clock.now(), false),
        effects: undefined,
        entry,
        durationMs: Date.now() - entry.startedAt,
        result: undefined,
        error,
      };
      if (entry.row.run_id !== null) pending.ack.inRun = true;
    }
    this.#acks.push(pending);
    this.#pace.settled();
    if (this.#state === "running") this.#startAhead();
    this.#poke();
  }

  /**
   * An attempt the database no longer has as this worker's (killed by hand, rescued, retried,
   * deleted): its handler's signal aborts with `reason` and its slot frees at once, as on a
   * timeout. Nothing is written: an ack would be fenced. `attempt` is undefined for a kill made
   * in this process, which also drops the task if it was claimed ahead.
   */
  #lost(id: string, attempt: number | undefined, reason: KilledError | AttemptLostError): void {
    if (attempt === undefined) this.#ahead = this.#ahead.filter((row) => row.id !== id);
    const entry = this.#inFlight.get(id);
    if (!entry || entry.settled || (attempt !== undefined && entry.attempt !== attempt)) return;
    entry.settled = true;
    entry.timer?.clear();
    this.#inFlight.delete(id);
    abortEntry(entry, reason);
    const task: TaskEventInfo = {
      taskId: id,
      queue: entry.row.queue,
      attempt: entry.attempt,
      maxAttempts: entry.row.max_attempts,
      durationMs: Date.now() - entry.startedAt,
    };
    this.#emit(
      reason instanceof KilledError
        ? { type: "error", task, error: reason, status: "killed" }
        : { type: "error", task, error: reason },
    );
    if (this.#state === "running") this.#startAhead();
    this.#poke();
  }

  /** The ack (and follow-up writes) of a finished attempt. */
  #outcome(entry: InFlight, outcome: Outcome): PendingAck {
    const { row, attempt } = entry;
    const { storage } = this.#o;
    const now = storage.clock.now();
    let failed = !outcome.ok;
    let error: unknown = outcome.ok ? undefined : outcome.error;
    let value = outcome.ok ? outcome.value : undefined;
    let effects: PendingAck["effects"];
    if (value instanceof Transition) {
      effects = value.effects;
      value = value.result;
    }
    let encoded: Uint8Array | string | null = null;
    if (outcome.ok && value !== undefined) {
      const { codec } = storage;
      try {
        encoded = codec.encodeText ? codec.encodeText(value) : codec.encode(value);
      } catch (cause) {
        failed = true;
        error = new TypeError(
          `Cannot store the task's result with the ${codec.name} codec: ${messageOf(cause)}`,
          { cause },
        );
      }
    }
    const ack: TaskAck = failed
      ? this.#failure(entry, error, now, !outcome.ok && outcome.kill === true)
      : {
        id: row.id,
        queue: row.queue,
        attempt,
        status: "done",
        result: encoded,
        error: null,
        retryInMs: null,
        doneAt: now,
      };
    if (row.run_id !== null) ack.inRun = true;
    return {
      ack,
      effects: failed || row.run_id === null ? undefined : effects,
      entry,
      durationMs: Date.now() - entry.startedAt,
      result: failed ? undefined : value,
      error,
    };
  }

  /** The ack of a failed attempt: `failed` with its retry time, or `killed` when it is over. */
  #failure(entry: InFlight, error: unknown, now: number, forceKill: boolean): TaskAck {
    const { row, attempt } = entry;
    const kill = forceKill || isAbortError(error) ||
      attempt >= Math.min(row.max_attempts, this.#o.maxAttempts ?? Infinity);
    let retryInMs: number | null = null;
    if (!kill) {
      // An attempt interrupted by a shutdown is due again at once, on another worker.
      retryInMs = isShutdownError(error) ? 0 : this.#retryDelay(entry, error);
    }
    return {
      id: row.id,
      queue: row.queue,
      attempt,
      status: kill ? "killed" : "failed",
      result: null,
      error: serializeError(error),
      retryInMs,
      doneAt: now,
    };
  }

  /**
   * The backoff before the next attempt. A backoff function that throws or returns no usable
   * number is reported (an `error` event) and the default backoff applies.
   */
  #retryDelay(entry: InFlight, error: unknown): number {
    const { row, attempt } = entry;
    const backoff: Backoff = row.backoff === null
      ? this.#o.backoff
      : JSON.parse(row.backoff) as BackoffOptions;
    let problem: string;
    try {
      const delay = backoffDelay(backoff, attempt, error);
      if (Number.isFinite(delay)) return delay;
      problem = `returned ${describeValue(delay)}`;
    } catch (cause) {
      problem = `threw ${describeError(cause)}`;
    }
    this.#emit({
      type: "error",
      error: new TypeError(
        `The backoff of worker '${this.name}' ${problem} for task '${row.id}' (attempt ${attempt}); the default backoff applies`,
      ),
    });
    return backoffDelay(DEFAULT_BACKOFF, attempt, error);
  }

  /** Records each outcome in a transaction of its own; returns those that could not be written. */
  async #ackEach(acks: PendingAck[]): Promise<PendingAck[]> {
    const { storage } = this.#o;
    const kept: PendingAck[] = [];
    for (const pending of acks) {
      const request: FlushRequest = {
        queue: storage.queue,
        worker: this.name,
        acks: [this.#flushAck(pending)],
        start: [],
        claim: { direct: 0, ahead: 0, textArgs: false },
      };
      const now = storage.databaseNow();
      if (now !== undefined) request.now = now;
      let fenced: Set<string>;
      try {
        const outcome = await storage.backend.workerFlush(request);
        this.#replaceFailedEffects([pending], outcome.replaced);
        fenced = outcome.fenced;
      } catch {
        kept.push(pending);
        continue;
      }
      this.#report(pending, fenced.has(pending.ack.id));
    }
    return kept;
  }

  /** Aborts every running handler; after a moment, records the stragglers as interrupted. */
  #abortAll(): void {
    if (this.#abortedAll) return;
    this.#abortedAll = true;
    const error = new ShutdownError(this.name);
    const entries = [...this.#inFlight.values()];
    for (const entry of entries) abortEntry(entry, error);
    // Give handlers that honour their signal a moment to settle on their own.
    this.#stragglerTimer = setTimeout(() => {
      for (const entry of entries) this.#settle(entry, { ok: false, error });
    }, 100);
  }

  async #register(): Promise<void> {
    const { storage, concurrency } = this.#o;
    const registration: Parameters<typeof storage.backend.workerRegister>[0] = {
      name: this.name,
      queue: storage.queue,
      instanceId: this.#instanceId,
      host: this.#o.host ?? HOST_NAME,
      pid: PROCESS_ID,
      concurrency,
      orphanAfterMs: storage.config.reenqueueOrphanedAfterMs,
    };
    const now = storage.databaseNow();
    if (now !== undefined) registration.now = now;
    const alive = await storage.backend.workerRegister(registration);
    if (alive) {
      throw new WorkerNameTakenError(
        this.name,
        `an instance is alive on host '${alive.host}' (pid ${alive.pid}, last heartbeat ${
          Math.max(0, (now ?? Date.now()) - alive.last_seen)
        } ms ago); stop it or choose another name`,
      );
    }
  }

  /** Keeps this worker alive in the table and rescues tasks of workers that died. */
  async #heartbeat(): Promise<void> {
    if (this.#state === "exited" || this.#fatal !== undefined) return;
    const { storage } = this.#o;
    try {
      const beat: Parameters<typeof storage.backend.workerHeartbeat>[0] = {
        name: this.name,
        instanceId: this.#instanceId,
        orphanAfterMs: storage.config.reenqueueOrphanedAfterMs,
      };
      const now = storage.databaseNow();
      if (now !== undefined) beat.now = now;
      const rescued = await storage.backend.workerHeartbeat(beat);
      if (rescued === null) {
        this.#fail(
          new WorkerFatalError(
            `Worker '${this.name}' was taken over by another instance (its heartbeat went stale)`,
          ),
        );
        return;
      }
      this.#emit({ type: "heartbeat", rescued });
      if (rescued > 0) this.#poke(); // rescued tasks are due now: claim them without waiting a poll
    } catch (error) {
      if (storage.backend.closed) {
        this.#fail(
          new WorkerFatalError(`Worker '${this.name}' lost its database`, { cause: error }),
        );
      } else {
        this.#emit({ type: "error", error });
      }
    }
  }

  async #unregister(): Promise<void> {
    const { storage } = this.#o;
    if (storage.backend.closed) return;
    try {
      const worker: Parameters<typeof storage.backend.workerUnregister>[0] = {
        name: this.name,
        instanceId: this.#instanceId,
        ahead: this.#ahead,
      };
      const now = storage.databaseNow();
      if (now !== undefined) worker.now = now;
      await storage.backend.workerUnregister(worker);
    } catch (error) {
      // The row stays "alive" until its heartbeat goes stale; orphan rescue covers its tasks.
      this.#emit({ type: "error", error });
    }
  }

  #fail(error: unknown): void {
    if (this.#fatal !== undefined) return;
    this.#fatal = error;
    this.#emit({ type: "error", error });
    if (this.#state === "running") this.#state = "stopping";
    this.#abortAll();
    this.#inFlight.clear();
    this.#acks = [];
    this.#ahead = [];
    this.#poke();
  }

  #emit(event: WorkerEvent): void {
    for (const listener of this.#o.listeners) {
      try {
        listener(this.#context, event);
      } catch {
        // A listener's failure must never stop the worker.
      }
    }
  }
}

function compose<T>(
  middleware: readonly Middleware<T>[],
  handler: Handler<T>,
): (args: T, ctx: TaskContext) => unknown {
  if (middleware.length === 0) return handler;
  return middleware.reduceRight<(args: T, ctx: TaskContext) => Promise<unknown>>(
    (next, layer) => (args, ctx) => layer(args, ctx, (nextArgs = args) => next(nextArgs, ctx)),
    async (args, ctx) => await handler(args, ctx),
  );
}

function signalOf(entry: InFlight): AbortSignal {
  if (!entry.controller) {
    entry.controller = new AbortController();
    if (entry.abortReason !== undefined) entry.controller.abort(entry.abortReason);
  }
  return entry.controller.signal;
}

function abortEntry(entry: InFlight, reason: unknown): void {
  if (entry.abortReason !== undefined) return;
  entry.abortReason = reason;
  entry.controller?.abort(reason);
}

/** Whether `error` kills the task at once; false for anything that cannot be inspected. */
function isAbortError(error: unknown): boolean {
  try {
    return error instanceof AbortError ||
      (error instanceof Error && error.name === "AbortError" && !(error instanceof DOMException));
  } catch {
    return false; // a Proxy or a throwing getter: an ordinary failure
  }
}

function isShutdownError(error: unknown): boolean {
  try {
    return error instanceof ShutdownError;
  } catch {
    return false;
  }
}

/** What an attempt that threw `error` failed with: a {@linkcode NonError} for no value. */
function failureOf(error: unknown, how: "threw" | "rejected with"): unknown {
  return error === undefined || error === null ? new NonError(error, how) : error;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
