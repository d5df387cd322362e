export { main } from "./main.ts";
export { type CapturedIo, captureIo, type CliIo } from "./io.ts";
export { EXIT, UsageError } from "./errors.ts";
export { VERSION } from "./version.ts";
export { EXIT_BROKEN_PIPE, type ProcessIo, processIo } from "./process_io.ts";
