/**
 * The shape of a workflow, recorded on each of its runs for drawing: a chain of steps for a
 * {@linkcode Workflow}, the nodes and dependencies of a {@linkcode DagFlow}.
 *
 * @example Read a run's graph
 * ```ts
 * import { openDatabase, SqliteStorage, Workflow, WorkerBuilder } from "@apalis/sqlite";
 *
 * const db = openDatabase(":memory:");
 * SqliteStorage.setup(db);
 * const storage = new SqliteStorage<number>(db, "double");
 * const flow = new Workflow<number>("double").andThen(function double(n: number) {
 *   return n * 2;
 * });
 * const runId = await storage.pushStart(21);
 * const worker = new WorkerBuilder("w").backend(storage).handleSignals(false).build(flow);
 * await worker.runUntil(storage.waitForRun(runId));
 * const run = await storage.workflowRun(runId);
 * if (run?.graph?.nodes[0]?.label !== "andThen double") throw new Error("unexpected");
 * db.close();
 * ```
 */
export interface WorkflowGraph {
  /** Steps or nodes, in order. `key` is what {@linkcode StepRecord.node} refers to. */
  nodes: { key: string; label: string }[];
  /** Dependencies: `[from, to]` keys; `to` runs after `from`. */
  edges: [string, string][];
  /**
   * The node the run's first task runs, or `null` when that task only starts the entry nodes
   * (a DAG with several).
   */
  start: string | null;
}

/**
 * The graph node a task of a run ran, from its stored step (`null` for the run's first task,
 * `{ i }` in a workflow, `{ node }` in a DAG); `null` for bookkeeping tasks that run no node.
 */
export function stepNodeKey(step: unknown, graph: WorkflowGraph | null): string | null {
  if (!graph) return null;
  let key: string | null = null;
  if (step === null) key = graph.start;
  else if (typeof step === "object") {
    const position = step as { i?: unknown; node?: unknown };
    if (typeof position.node === "string") key = position.node;
    else if (typeof position.i === "number") key = String(position.i);
  }
  return key !== null && graph.nodes.some((node) => node.key === key) ? key : null;
}
