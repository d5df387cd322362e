export type { Database, Durability, OpenDatabaseOptions, SqlRow, SqlValue } from "./types.ts";
export { DatabaseOpenError, openDatabase } from "./open.ts";
export { DatabaseBusyError, isBusyError, retryBusy } from "./busy.ts";
export { DatabaseFileError, type DatabaseFileProblem } from "./file_error.ts";
export { SchemaMissingError } from "./schema_missing.ts";
