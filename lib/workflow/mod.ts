export { type FilterMapOptions, Workflow } from "./workflow.ts";
export { DagFlow, DagFlowError, type NodeFn, NodeHandle } from "./dag.ts";
