import type { RunEffect, StepTask } from "../backend/types.ts";
import { DEFAULT_MAX_ATTEMPTS } from "../storage/task.ts";
import type { Storage } from "../storage/storage.ts";
import type { WorkflowGraph } from "../storage/graph.ts";
import { describeValue } from "../storage/error_text.ts";
import { ulid } from "../storage/ulid.ts";
import type { TaskContext } from "../worker/context.ts";
import { AbortError } from "../worker/errors.ts";
import { type TaskFlow, Transition } from "../worker/transition.ts";

type StepFn = (input: unknown, ctx: TaskContext) => unknown;

type Step =
  | { kind: "map"; fn: StepFn }
  | { kind: "delay"; delay: (input: unknown) => number }
  | { kind: "fold"; fn: (acc: unknown, item: unknown, ctx: TaskContext) => unknown; init: unknown }
  | { kind: "repeat"; fn: StepFn }
  | { kind: "filterMap"; fn: StepFn; failedItems: "fail" | "skip" };

/** Options of {@linkcode Workflow.filterMap}. */
export interface FilterMapOptions {
  /**
   * What a failed item (one that ended `killed`) does: `"fail"` fails the run with an error that
   * names every failed item; `"skip"` leaves it out of the output (it stays visible, with its
   * error, in `workflowRun()`). @default {"fail"}
   */
  failedItems?: "fail" | "skip";
}

/** Where a task stands in a sequential workflow (stored as the task's `step`, JSON). */
interface Position {
  /** The step's index. */
  i: number;
  /** A fold in progress: the payload is `{ acc, items }`. */
  fold?: 1;
  /** How many times a repeatUntil step has run before this task. */
  rep?: number;
  /** A filterMap item: its join and slot (input index). */
  item?: 1;
  join?: string;
  slot?: number;
  /** A filterMap collector: the join whose parts it collects. */
  collect?: string;
}

interface FoldState {
  acc: unknown;
  items: unknown[];
}

/**
 * A sequential workflow: steps that run one after another, each as its own persisted task. A
 * step's result is the next step's input; the last step's result is the run's result. A step's
 * ack and the insert of the next step commit in one transaction, so a crash can re-run a step
 * but never enqueues its successor twice. A step that ends `killed` fails the run.
 *
 * @typeParam I the run's input
 * @typeParam O the current last step's output
 * @example Usage
 * ```ts
 * import { openDatabase, SqliteStorage, Workflow, WorkerBuilder } from "@apalis/sqlite";
 *
 * const db = openDatabase(":memory:");
 * SqliteStorage.setup(db);
 * const storage = new SqliteStorage<number>(db, "math");
 * const flow = new Workflow<number>("double-then-add")
 *   .andThen((n) => n * 2)
 *   .delayFor(10)
 *   .andThen((n) => n + 1);
 * const runId = await storage.pushStart(20);
 * const worker = new WorkerBuilder("math-worker").backend(storage).handleSignals(false).build(flow);
 * await worker.runUntil(storage.waitForRun(runId));
 * const run = await storage.workflowRun(runId);
 * if (run?.result !== 41) throw new Error("unexpected");
 * db.close();
 * ```
 */
export class Workflow<I = unknown, O = I> implements TaskFlow<I> {
  /** The workflow's name (recorded on its runs). */
  readonly name: string;
  #steps: Step[];
  #graphText: string | undefined;

  /** @param name the workflow's name */
  constructor(name: string, steps: Step[] = []) {
    if (typeof name !== "string" || name.length === 0) {
      throw new TypeError(
        `Cannot create Workflow as 'name' must be a non-empty string: current value is ${
          JSON.stringify(name)
        }`,
      );
    }
    this.name = name;
    this.#steps = steps;
  }

  /** Adds a step: `fn` receives the previous output and returns the next (sync or async). */
  andThen<N>(fn: (input: O, ctx: TaskContext) => N | Promise<N>): Workflow<I, Awaited<N>> {
    return this.#add({ kind: "map", fn: fn as StepFn });
  }

  /** Waits `ms` milliseconds (persisted: the next step is scheduled, no worker slot is held). */
  delayFor(ms: number): Workflow<I, O> {
    if (!Number.isFinite(ms) || ms < 0) {
      throw new RangeError(
        `Cannot add delayFor to workflow '${this.name}' as 'ms' must be >= 0: current value is ${ms}`,
      );
    }
    return this.#add({ kind: "delay", delay: () => ms });
  }

  /**
   * Waits as many milliseconds as `fn` computes from the previous output: a finite number >= 0,
   * else the step fails with a `RangeError`.
   */
  delayWith(fn: (input: O) => number): Workflow<I, O> {
    return this.#add({ kind: "delay", delay: fn as (input: unknown) => number });
  }

  /**
   * Folds the previous output (an iterable) into one value, one persisted task per item:
   * `acc = fn(acc, item)` starting from `init`.
   */
  fold<A>(
    fn: (acc: A, item: O extends Iterable<infer E> ? E : never, ctx: TaskContext) => A | Promise<A>,
    init: A,
  ): Workflow<I, A> {
    return this.#add({
      kind: "fold",
      fn: fn as (acc: unknown, item: unknown, ctx: TaskContext) => unknown,
      init,
    });
  }

  /**
   * Runs `fn` on the same input until it returns a value (not `undefined` or `null`), which goes
   * to the next step. Each try is its own task.
   */
  repeatUntil<N>(
    fn: (input: O, ctx: TaskContext) => N | undefined | null | Promise<N | undefined | null>,
  ): Workflow<I, N> {
    return this.#add({ kind: "repeat", fn: fn as StepFn });
  }

  /**
   * Runs `fn` on every item of the previous output (an iterable), each item as its own task,
   * in parallel across workers. The next step receives the results in input order, leaving out
   * `undefined` and `null` (filtered). Failed items are reported, not dropped: see `options`.
   */
  filterMap<N>(
    fn: (
      item: O extends Iterable<infer E> ? E : never,
      ctx: TaskContext,
    ) => N | undefined | null | Promise<N | undefined | null>,
    options: FilterMapOptions = {},
  ): Workflow<I, N[]> {
    const failedItems = options.failedItems ?? "fail";
    if (failedItems !== "fail" && failedItems !== "skip") {
      throw new TypeError(
        `Cannot add filterMap to workflow '${this.name}' as 'failedItems' must be "fail" or "skip": current value is ${
          JSON.stringify(failedItems)
        }`,
      );
    }
    return this.#add({ kind: "filterMap", fn: fn as StepFn, failedItems });
  }

  /** The workflow's shape: its steps in a chain, labelled by kind and function name. */
  graph(): WorkflowGraph {
    const nodes = this.#steps.map((step, i) => ({ key: String(i), label: stepLabel(step) }));
    const edges = nodes.slice(1).map((node, i): [string, string] => [String(i), node.key]);
    return { nodes, edges, start: "0" };
  }

  get #graphJson(): string {
    return this.#graphText ??= JSON.stringify(this.graph());
  }

  /** How many steps it has. */
  get length(): number {
    return this.#steps.length;
  }

  /** The handler a worker runs for this workflow (`WorkerBuilder.build(workflow)` calls it). */
  toHandler(storage: Storage<I>): (args: I, ctx: TaskContext) => Promise<unknown> {
    if (this.#steps.length === 0) {
      throw new TypeError(`Cannot run workflow '${this.name}': it has no steps`);
    }
    return (args, ctx) => this.#run(storage, args, ctx);
  }

  // deno-lint-ignore no-explicit-any
  #add<N>(step: Step): Workflow<I, any> & Workflow<I, N> {
    return new Workflow<I, N>(this.name, [...this.#steps, step]);
  }

  async #run(storage: Storage<I>, args: unknown, ctx: TaskContext): Promise<Transition> {
    const runId = ctx.runId;
    if (runId === undefined) {
      throw new AbortError(
        `Cannot run task '${ctx.taskId}' in workflow '${this.name}': it is not part of a run (start runs with storage.pushStart())`,
      );
    }
    if (ctx.step === undefined) {
      // The run's first task: name the run now, so that a run failing here is named too.
      await storage.backend.runName(runId, this.name, this.#graphJson);
    }
    const at = parsePosition(ctx.step);
    if (at.i === this.#steps.length) {
      // The end of a workflow whose last step was a delay: the run completes now.
      return this.#transition(storage, ctx, args, { i: at.i + 1 }, 0);
    }
    const step = this.#steps[at.i];
    if (!step) {
      throw new AbortError(
        `Cannot run step ${at.i} of workflow '${this.name}': it has ${this.#steps.length} steps`,
      );
    }
    const next = (value: unknown, position: Position, delayMs = 0) =>
      this.#transition(storage, ctx, value, position, delayMs);
    switch (step.kind) {
      case "map":
        return next(await step.fn(args, ctx), { i: at.i + 1 });
      case "delay": {
        const ms = step.delay(args);
        if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) {
          throw new RangeError(
            `Cannot wait in delayWith in step ${at.i} of workflow '${this.name}' as the delay must be a finite number of milliseconds >= 0: current value is ${
              describeValue(ms)
            }`,
          );
        }
        return next(args, { i: at.i + 1 }, ms);
      }
      case "repeat": {
        const value = await step.fn(args, ctx);
        if (value === undefined || value === null) {
          return next(args, { i: at.i, rep: (at.rep ?? 0) + 1 });
        }
        return next(value, { i: at.i + 1 });
      }
      case "filterMap":
        if (at.item) return new Transition(await step.fn(args, ctx), []);
        if (at.collect !== undefined) {
          return next(await this.#collect(storage, runId, at, step.failedItems), {
            i: at.i + 1,
          });
        }
        return this.#fanOut(storage, ctx, at.i, toArray(args, this.name, at.i));
      case "fold": {
        const state: FoldState = at.fold
          ? args as FoldState
          : { acc: step.init, items: toArray(args, this.name, at.i) };
        if (state.items.length === 0) return next(state.acc, { i: at.i + 1 });
        const acc = await step.fn(state.acc, state.items[0], ctx);
        const items = state.items.slice(1);
        if (items.length === 0) return next(acc, { i: at.i + 1 });
        return next({ acc, items } satisfies FoldState, { i: at.i, fold: 1 });
      }
    }
  }

  /** A filterMap's first arrival: one task per item, and a join that enqueues the collector. */
  #fanOut(
    storage: Storage<I>,
    ctx: TaskContext,
    index: number,
    items: unknown[],
  ): Transition {
    if (items.length === 0) return this.#transition(storage, ctx, [], { i: index + 1 }, 0);
    const join = `filterMap:${index}:${ctx.taskId}`;
    const meta = metaOf(ctx);
    const tasks = items.map((item, slot): StepTask => ({
      queue: ctx.queue,
      args: storage.codec.encode(item ?? null),
      maxAttempts: ctx.maxAttempts,
      priority: ctx.priority,
      delayMs: 0,
      meta,
      step: JSON.stringify({ i: index, item: 1, join, slot } satisfies Position),
    }));
    return new Transition({ items: items.length }, [
      this.#naming(),
      {
        kind: "declare",
        join: {
          key: join,
          expected: items.length,
          taskId: ulid(),
          queue: ctx.queue,
          args: storage.codec.encode(null),
          step: JSON.stringify({ i: index, collect: join } satisfies Position),
          priority: ctx.priority,
          maxAttempts: ctx.maxAttempts,
          meta,
        },
      },
      { kind: "enqueue", tasks },
    ]);
  }

  /** A filterMap's collector: the items' results in input order, failures reported. */
  async #collect(
    storage: Storage<I>,
    runId: string,
    at: Position,
    failedItems: "fail" | "skip",
  ): Promise<unknown[]> {
    const values: unknown[] = [];
    const failures: string[] = [];
    for (const part of await storage.backend.joinParts(runId, at.collect!)) {
      if (part.status === "killed") {
        let message = "unknown error";
        try {
          message = (JSON.parse(part.error ?? "{}") as { message?: string }).message ?? message;
        } catch {
          // Keep the generic message.
        }
        failures.push(`#${part.slot}: ${message}`);
        continue;
      }
      const value = part.result === null ? undefined : storage.codec.decode(part.result);
      if (value !== undefined && value !== null) values.push(value);
    }
    if (failures.length > 0 && failedItems === "fail") {
      const error = new AbortError(
        `filterMap in step ${at.i} of workflow '${this.name}': ${failures.length} item(s) failed: ${
          failures.join("; ")
        }`,
      );
      error.name = "FilterMapError";
      throw error;
    }
    return values;
  }

  /** The step's result, plus the writes that commit with its ack: the next task, or the run's end. */
  #transition(
    storage: Storage<I>,
    ctx: TaskContext,
    value: unknown,
    position: Position,
    delayMs: number,
  ): Transition {
    // Encode now: a value the codec refuses fails this attempt, not the commit.
    const bytes = value === undefined ? null : storage.codec.encode(value);
    // A trailing delay still waits: an end marker task at {i: length} completes the run.
    const last = position.i > this.#steps.length ||
      (position.i === this.#steps.length && delayMs <= 0);
    const effects: RunEffect[] = [this.#naming()];
    if (last) {
      effects.push({ kind: "complete", result: bytes });
    } else {
      effects.push({
        kind: "enqueue",
        tasks: [{
          queue: ctx.queue,
          args: bytes ?? storage.codec.encode(null),
          maxAttempts: ctx.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
          priority: ctx.priority,
          delayMs: Math.max(0, delayMs),
          meta: metaOf(ctx),
          step: JSON.stringify(position),
        }],
      });
    }
    return new Transition(value, effects);
  }

  /** The effect that names the run's workflow (once: a run started by a push has no name). */
  #naming(): RunEffect {
    return { kind: "name", workflow: this.name, graph: this.#graphJson };
  }
}

/** A task's metadata as its successors store it. */
function metaOf(ctx: TaskContext): string | null {
  return Object.keys(ctx.meta).length ? JSON.stringify(ctx.meta) : null;
}

function parsePosition(step: string | undefined): Position {
  if (step === undefined) return { i: 0 };
  const position = JSON.parse(step) as Position;
  return typeof position.i === "number" ? position : { i: 0 };
}

function toArray(value: unknown, workflow: string, index: number): unknown[] {
  if (value !== null && typeof value === "object" && Symbol.iterator in value) {
    return [...(value as Iterable<unknown>)];
  }
  throw new AbortError(
    `Cannot fold in step ${index} of workflow '${workflow}': its input is not iterable`,
  );
}

function stepLabel(step: Step): string {
  switch (step.kind) {
    case "map":
      return named("andThen", step.fn);
    case "delay":
      return "delay";
    case "fold":
      return named("fold", step.fn);
    case "repeat":
      return named("repeatUntil", step.fn);
    case "filterMap":
      return named("filterMap", step.fn);
  }
}

function named(kind: string, fn: { name: string }): string {
  return fn.name ? `${kind} ${fn.name}` : kind;
}
