import type { JoinSpec, RunEffect, StepTask } from "../backend/types.ts";
import type { Codec } from "../storage/codec.ts";
import type { Storage } from "../storage/storage.ts";
import type { WorkflowGraph } from "../storage/graph.ts";
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
    storage: Storage<unknown>,
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

  async #run(storage: Storage<unknown>, graph: Graph, args: unknown, ctx: TaskContext) {
    const runId = ctx.runId;
    if (runId === undefined) {
      throw new AbortError(
        `Cannot run task '${ctx.taskId}' in DagFlow '${this.name}': it is not part of a run (start runs with storage.startFanOut() or pushStart())`,
      );
    }
    if (ctx.step === undefined) {
      // The run's first task: name the run now, so that a run failing here is named too.
      await storage.backend.runName(runId, this.name, this.#graphJson);
    }
    const at: DagPosition = ctx.step === undefined ? {} : JSON.parse(ctx.step);
    let node = at.node === undefined ? undefined : graph.nodes.get(at.node);
    if (at.node !== undefined && !node) {
      throw new AbortError(`Cannot run node '${at.node}': DagFlow '${this.name}' has no such node`);
    }
    if (!node) {
      // The run's first task: one entry node takes the input as it is; several take one each.
      if (graph.entries.length === 1) node = graph.entries[0]!;
      else return this.#fanOut(storage, graph, args, ctx);
    }
    // A node after others reads its inputs from its join (the task's own payload is empty).
    const input = node.deps.length === 0 ? args : await this.#inputs(storage, runId, node);
    const output = await node.fn(input, ctx);
    const bytes = output === undefined ? null : storage.codec.encode(output);
    const { codec } = storage;
    const effects: RunEffect[] = [this.#naming()];
    // Inputs are recorded even when the run has failed meanwhile: retrying the killed step
    // revives the run, and the joins this branch completed resume with it.
    for (const successor of graph.successors.get(node.name)!) {
      effects.push({
        kind: "feed",
        join: joinOf(successor, ctx, codec),
        slot: successor.deps.indexOf(node.name),
        result: bytes,
        // Its payload shows its inputs; the node itself reads them from the join. One input of
        // `undefined` (a dependency that returned nothing) is shown as null.
        combine: (results) => {
          const inputs = results.map((result) => decoded(codec, result));
          return codec.encode(successor.deps.length === 1 ? inputs[0] ?? null : inputs);
        },
      });
    }
    if (graph.sinks.includes(node)) {
      const single = graph.sinks.length === 1;
      effects.push({
        kind: "finish",
        key: END_JOIN,
        slot: graph.sinks.indexOf(node),
        expected: graph.sinks.length,
        result: bytes,
        combine: (results) =>
          single ? bytes : codec.encode(results.map((result) => decoded(codec, result))),
      });
    }
    return new Transition(output, effects);
  }

  /** A node's inputs, decoded from its join: one value, or an array in `dependsOn` order. */
  async #inputs(storage: Storage<unknown>, runId: string, node: NodeDef): Promise<unknown> {
    const parts = await storage.backend.joinParts(runId, joinKey(node.name));
    const values = parts.map((part) => decoded(storage.codec, part.result));
    return node.deps.length === 1 ? values[0] : values;
  }

  #fanOut(
    storage: Storage<unknown>,
    graph: Graph,
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
    const tasks = names.map((name, i): StepTask => ({
      queue: ctx.queue,
      args: storage.codec.encode(args[i] === undefined ? null : args[i]),
      maxAttempts: ctx.maxAttempts,
      priority: ctx.priority,
      delayMs: 0,
      meta: metaOf(ctx),
      step: JSON.stringify({ node: name } satisfies DagPosition),
    }));
    return new Transition({ entries: names.length }, [
      this.#naming(),
      { kind: "enqueue", tasks },
    ]);
  }

  /** The effect that names the run's DAG (once: a run started by a push has no name). */
  #naming(): RunEffect {
    return { kind: "name", workflow: this.name, graph: this.#graphJson };
  }
}

interface Graph {
  nodes: ReadonlyMap<string, NodeDef>;
  successors: ReadonlyMap<string, NodeDef[]>;
  sinks: NodeDef[];
  entries: NodeDef[];
}

/**
 * The join a successor waits on: its task (with a fixed id) is enqueued by the transaction that
 * records its last input, and only while the run is running.
 */
function joinOf(successor: NodeDef, ctx: TaskContext, codec: Codec): JoinSpec {
  return {
    key: joinKey(successor.name),
    expected: successor.deps.length,
    taskId: `${ctx.runId}.${successor.name}`,
    queue: ctx.queue,
    args: codec.encode(null),
    step: JSON.stringify({ node: successor.name } satisfies DagPosition),
    priority: ctx.priority,
    maxAttempts: ctx.maxAttempts,
    meta: metaOf(ctx),
  };
}

/** A part's result decoded (`undefined` for none). */
function decoded(codec: Codec, result: Uint8Array | null): unknown {
  return result === null ? undefined : codec.decode(result);
}

/** A task's metadata as its successors store it. */
function metaOf(ctx: TaskContext): string | null {
  return Object.keys(ctx.meta).length ? JSON.stringify(ctx.meta) : null;
}
