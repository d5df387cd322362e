export * from "./schema.ts";
export * from "./tasks.ts";
export * from "./workers.ts";
export * from "./changes.ts";
export * from "./runs.ts";
export * from "./throughput.ts";
export * from "./reports.ts";
