import type { SqliteStorage } from "../storage/sqlite_storage.ts";
import { retryBusy } from "../sqlite/busy.ts";
import type { WorkflowGraph } from "../storage/graph.ts";
import { ulid } from "../storage/ulid.ts";
import {
  joinAddPart,
  joinDeclare,
  joinEnqueueIfComplete,
  joinParts,
  runComplete,
  runIsRunning,
  runSetWorkflow,
} from "../store/runs.ts";
import { taskBackoff, taskInsert } from "../store/tasks.ts";
import type { Database } from "../sqlite/types.ts";
import type { TaskContext } from "../worker/context.ts";
import { AbortError } from "../worker/errors.ts";
import { type TaskFlow, Transition } from "../worker/transition.ts";

/** A node's function: its input (or its dependencies' results, in `dependsOn` order) to output. */
// deno-lint-ignore no-explicit-any
export type NodeFn = (input: any, ctx: TaskContext) => unknown;

interface NodeDef {
  name: string;
  fn: NodeFn;
  deps: string[];
}

/** Thrown by {@linkcode DagFlow.validate} for a cycle, a missing node or a duplicate name. */
export class DagFlowError extends Error {
  /**
   * @param dag the DAG's name
   * @param reason what is wrong
   */
  constructor(dag: string, reason: string) {
    super(`DagFlow '${dag}' is invalid: ${reason}`);
    this.name = "DagFlowError";
  }
}

/** A node of a {@linkcode DagFlow}, returned by `node()` and `addNode()`. */
export class NodeHandle {
  /** The node's name (unique in its DAG). */
  readonly name: string;
  #def: NodeDef;
  #dag: DagFlow;

  /** @internal Created by DagFlow. */
  constructor(dag: DagFlow, def: NodeDef) {
    this.#dag = dag;
    this.#def = def;
    this.name = def.name;
  }

  /**
   * Makes this node run after `deps`. With several dependencies (a fan-in) the node receives
   * their results as an array, in the order given here.
   */
  dependsOn(deps: NodeHandle | readonly NodeHandle[]): NodeHandle {
    const list = Array.isArray(deps) ? deps : [deps as NodeHandle];
    for (const dep of list) {
      if (!(dep instanceof NodeHandle) || !dep.#belongsTo(this.#dag)) {
        throw new DagFlowError(
          this.#dag.name,
          `node '${this.name}' depends on a node of another DagFlow (${
            (dep as { name?: string })?.name ?? String(dep)
          })`,
        );
      }
      if (this.#def.deps.includes(dep.name)) {
        throw new DagFlowError(
          this.#dag.name,
          `node '${this.name}' depends on '${dep.name}' twice`,
        );
      }
      this.#def.deps.push(dep.name);
    }
    return this;
  }

  #belongsTo(dag: DagFlow): boolean {
    return this.#dag === dag;
  }
}

/** Where a DAG task stands (stored as the task's `step`, JSON). */
interface DagPosition {
  /** The node the task runs. */
  node?: string;
}

const END_JOIN = "dag:end";

/** The join that collects a node's inputs. */
function joinKey(node: string): string {
  return `dag:node:${node}`;
}

/**
 * A workflow shaped as a directed acyclic graph: nodes run as soon as their dependencies are
 * done, each as its own task, in parallel across workers. A fan-in node is enqueued, with its
 * inputs, by the very transaction that completes its last dependency: it never waits in a
 * worker slot and is never enqueued twice. A node that ends `killed` fails the run.
 *
 * Start a run with one input per entry node: `storage.startFanOut([…])`, or `pushStart(input)`
 * for a DAG with one entry node. The run's result is the sink node's output (an array of the
 * sinks' outputs, in node order, when there are several).
 *
 * @example Usage
 * ```ts
 * import { DagFlow, openDatabase, SqliteStorage, WorkerBuilder } from "@apalis/sqlite";
 *
 * const db = openDatabase(":memory:");
 * SqliteStorage.setup(db);
 * const storage = new SqliteStorage<unknown>(db, "etl");
 * const dag = new DagFlow("user-etl");
 * const name = dag.addNode("name", (id: number) => `user-${id}`);
 * const age = dag.addNode("age", (id: number) => id + 20);
 * dag.addNode("collect", ([n, a]: [string, number]) => `${n} is ${a}`).dependsOn([name, age]);
 * dag.validate();
 * const runId = await storage.startFanOut([1, 2]);
 * const worker = new WorkerBuilder("etl-worker").backend(storage).handleSignals(false).build(dag);
 * await worker.runUntil(storage.waitForRun(runId));
 * const run = await storage.workflowRun(runId);
 * if (run?.result !== "user-1 is 22") throw new Error("unexpected");
 * db.close();
 * ```
 */
export class DagFlow implements TaskFlow<unknown> {
  /** The DAG's name (recorded on its runs). */
  readonly name: string;
  #nodes = new Map<string, NodeDef>();
  #graphJson = "";

  /** @param name the DAG's name */
  constructor(name: string) {
    if (typeof name !== "string" || name.length === 0) {
      throw new TypeError(
        `Cannot create DagFlow as 'name' must be a non-empty string: current value is ${
          JSON.stringify(name)
        }`,
      );
    }
    this.name = name;
  }

  /** Adds a node named after its function (`fn.name`, or `node-N` for an anonymous one). */
  node(fn: NodeFn): NodeHandle {
    let name = fn.name || `node-${this.#nodes.size + 1}`;
    for (let n = 2; this.#nodes.has(name); n++) name = `${fn.name || "node"}-${n}`;
    return this.addNode(name, fn);
  }

  /** Adds a node with an explicit name. */
  addNode(name: string, fn: NodeFn): NodeHandle {
    if (typeof name !== "string" || name.length === 0) {
      throw new TypeError(
        `Cannot add a node to DagFlow '${this.name}': its name must be non-empty`,
      );
    }
    if (this.#nodes.has(name)) {
      throw new DagFlowError(this.name, `two nodes are named '${name}'`);
    }
    if (typeof fn !== "function") {
      throw new TypeError(
        `Cannot add node '${name}' to DagFlow '${this.name}': fn is not a function`,
      );
    }
    const def: NodeDef = { name, fn, deps: [] };
    this.#nodes.set(name, def);
    return new NodeHandle(this, def);
  }

  /** The nodes without dependencies, in the order they were added. */
  get entryNodes(): string[] {
    return [...this.#nodes.values()].filter((node) => node.deps.length === 0).map((n) => n.name);
  }

  /** Throws a `DagFlowError` for an empty DAG, a missing node or a cycle. */
  validate(): void {
    if (this.#nodes.size === 0) throw new DagFlowError(this.name, "it has no nodes");
    for (const node of this.#nodes.values()) {
      for (const dep of node.deps) {
        if (!this.#nodes.has(dep)) {
          throw new DagFlowError(this.name, `node '${node.name}' depends on missing node '${dep}'`);
        }
      }
    }
    const state = new Map<string, "visiting" | "done">();
    const visit = (name: string, path: string[]): void => {
      if (state.get(name) === "done") return;
      if (state.get(name) === "visiting") {
        const cycle = [...path.slice(path.indexOf(name)), name].join(" -> ");
        throw new DagFlowError(this.name, `it has a cycle: ${cycle}`);
      }
      state.set(name, "visiting");
      for (const dep of this.#nodes.get(name)!.deps) visit(dep, [...path, name]);
      state.set(name, "done");
    };
    for (const name of this.#nodes.keys()) visit(name, []);
  }

  /** The graph in Graphviz DOT: `dot -Tsvg` draws it. */
  toDot(): string {
    const quote = (text: string) => JSON.stringify(text);
    const lines = [`digraph ${quote(this.name)} {`];
    for (const node of this.#nodes.values()) {
      lines.push(`  ${quote(node.name)};`);
      for (const dep of node.deps) lines.push(`  ${quote(dep)} -> ${quote(node.name)};`);
    }
    lines.push("}");
    return lines.join("\n") + "\n";
  }

  /** The handler a worker runs for this DAG (`WorkerBuilder.build(dag)` calls it). Validates. */
  toHandler(
    storage: SqliteStorage<unknown>,
  ): (args: unknown, ctx: TaskContext) => Promise<unknown> {
    this.validate();
    const nodes = [...this.#nodes.values()];
    const successors = new Map(nodes.map((node) => [node.name, [] as NodeDef[]]));
    for (const node of nodes) for (const dep of node.deps) successors.get(dep)!.push(node);
    const sinks = nodes.filter((node) => successors.get(node.name)!.length === 0);
    const entries = nodes.filter((node) => node.deps.length === 0);
    const graph: Graph = { nodes: this.#nodes, successors, sinks, entries };
    this.#graphJson = JSON.stringify(this.graph());
    return (args, ctx) => this.#run(storage, graph, args, ctx);
  }

  /** The DAG's shape: its nodes (named) and their dependencies. */
  graph(): WorkflowGraph {
    const nodes = [...this.#nodes.values()];
    const entries = nodes.filter((node) => node.deps.length === 0);
    return {
      nodes: nodes.map((node) => ({ key: node.name, label: node.name })),
      edges: nodes.flatMap((node) => node.deps.map((dep): [string, string] => [dep, node.name])),
      start: entries.length === 1 ? entries[0]!.name : null,
    };
  }

  async #run(storage: SqliteStorage<unknown>, graph: Graph, args: unknown, ctx: TaskContext) {
    const runId = ctx.runId;
    if (runId === undefined) {
      throw new AbortError(
        `Cannot run task '${ctx.taskId}' in DagFlow '${this.name}': it is not part of a run (start runs with storage.startFanOut() or pushStart())`,
      );
    }
    if (ctx.step === undefined) {
      // The run's first task: name the run now, so that a run failing here is named too.
      await retryBusy(
        storage.db,
        () => runSetWorkflow(storage.db, runId, this.name, this.#graphJson),
      );
    }
    const at: DagPosition = ctx.step === undefined ? {} : JSON.parse(ctx.step);
    let node = at.node === undefined ? undefined : graph.nodes.get(at.node);
    if (at.node !== undefined && !node) {
      throw new AbortError(`Cannot run node '${at.node}': DagFlow '${this.name}' has no such node`);
    }
    if (!node) {
      // The run's first task: one entry node takes the input as it is; several take one each.
      if (graph.entries.length === 1) node = graph.entries[0]!;
      else return this.#fanOut(storage, graph, runId, args, ctx);
    }
    // A node after others reads its inputs from its join (the task's own payload is empty).
    const input = node.deps.length === 0 ? args : this.#inputs(storage, runId, node);
    const output = await node.fn(input, ctx);
    const bytes = output === undefined ? null : storage.codec.encode(output);
    const done = node;
    return new Transition(output, (db, now) => {
      runSetWorkflow(db, runId, this.name, this.#graphJson);
      const next = new Spawner(db, storage, ctx, runId, now);
      // Inputs are recorded even when the run has failed meanwhile: retrying the killed step
      // revives the run, and the joins this branch completed resume with it.
      for (const successor of graph.successors.get(done.name)!) {
        next.feed(successor, successor.deps.indexOf(done.name), bytes);
      }
      if (graph.sinks.includes(done)) {
        const results = next.part(END_JOIN, graph.sinks.indexOf(done), bytes);
        if (results.length === graph.sinks.length && runIsRunning(db, runId)) {
          const result = graph.sinks.length === 1 ? bytes : storage.codec.encode(results);
          runComplete(db, runId, result, now);
        }
      }
    });
  }

  /** A node's inputs, decoded from its join: one value, or an array in `dependsOn` order. */
  #inputs(storage: SqliteStorage<unknown>, runId: string, node: NodeDef): unknown {
    const values = joinParts(storage.db, runId, joinKey(node.name)).map((part) =>
      part.result === null ? undefined : storage.codec.decode(part.result)
    );
    return node.deps.length === 1 ? values[0] : values;
  }

  #fanOut(
    storage: SqliteStorage<unknown>,
    graph: Graph,
    runId: string,
    args: unknown,
    ctx: TaskContext,
  ): Transition {
    const names = graph.entries.map((node) => node.name);
    if (!Array.isArray(args) || args.length !== names.length) {
      throw new AbortError(
        `Cannot start DagFlow '${this.name}': it has ${names.length} entry nodes (${
          names.join(", ")
        }) but the run's input ${
          Array.isArray(args) ? `has ${args.length} items` : "is not an array"
        } (use storage.startFanOut with one input per entry node)`,
      );
    }
    const inputs = args.map((input) => input === undefined ? null : storage.codec.encode(input));
    return new Transition({ entries: names.length }, (db, now) => {
      runSetWorkflow(db, runId, this.name, this.#graphJson);
      if (!runIsRunning(db, runId)) return;
      const next = new Spawner(db, storage, ctx, runId, now);
      names.forEach((name, i) => next.node(name, inputs[i]!));
    });
  }
}

interface Graph {
  nodes: ReadonlyMap<string, NodeDef>;
  successors: ReadonlyMap<string, NodeDef[]>;
  sinks: NodeDef[];
  entries: NodeDef[];
}

/** Writes a DAG step's consequences inside the ack's transaction. */
class Spawner {
  constructor(
    readonly db: Database,
    readonly storage: SqliteStorage<unknown>,
    readonly ctx: TaskContext,
    readonly runId: string,
    readonly now: number,
  ) {}

  /** Enqueues a node's task with its input. */
  node(name: string, input: Uint8Array | null): void {
    const { ctx, now } = this;
    taskInsert(this.db, {
      id: ulid(now),
      queue: ctx.queue,
      args: input ?? this.storage.codec.encode(null),
      maxAttempts: ctx.maxAttempts,
      priority: ctx.priority,
      runAt: now,
      createdAt: now,
      meta: Object.keys(ctx.meta).length ? JSON.stringify(ctx.meta) : null,
      backoff: taskBackoff(this.db, ctx.taskId),
      runId: this.runId,
      step: JSON.stringify({ node: name } satisfies DagPosition),
    });
  }

  /** Records one input of a join and returns every input recorded so far, decoded, by slot. */
  part(key: string, slot: number, input: Uint8Array | null): unknown[] {
    joinAddPart(this.db, { runId: this.runId, key, slot, result: input });
    return joinParts(this.db, this.runId, key).map((part) =>
      part.result === null ? undefined : this.storage.codec.decode(part.result)
    );
  }

  /**
   * Gives a successor one of its inputs. Its task (with a fixed id) is enqueued by the
   * transaction that records its last input, and only while the run is running.
   */
  feed(successor: NodeDef, slot: number, input: Uint8Array | null): void {
    const { ctx, runId, db } = this;
    const key = joinKey(successor.name);
    joinDeclare(db, {
      runId,
      key,
      expected: successor.deps.length,
      taskId: `${runId}.${successor.name}`,
      queue: ctx.queue,
      args: this.storage.codec.encode(null),
      step: JSON.stringify({ node: successor.name } satisfies DagPosition),
      priority: ctx.priority,
      maxAttempts: ctx.maxAttempts,
      meta: Object.keys(ctx.meta).length ? JSON.stringify(ctx.meta) : null,
      backoff: taskBackoff(db, ctx.taskId),
    });
    const inputs = this.part(key, slot, input);
    if (inputs.length === successor.deps.length) {
      // Its payload shows its inputs; the node itself reads them from the join.
      // One input of `undefined` (a dependency that returned nothing) is shown as null.
      const args = this.storage.codec.encode(
        successor.deps.length === 1 ? inputs[0] ?? null : inputs,
      );
      joinEnqueueIfComplete(db, { runId, key, now: this.now, args });
    }
  }
}
