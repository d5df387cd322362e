/**
 * The queue on PostgreSQL, for workers on several hosts: the same storages, workers, workflows
 * and DAGs as on SQLite, over one pool of the `postgres` client (postgres.js). A separate entry
 * point, so that a SQLite user never loads a PostgreSQL client.
 *
 * @example Push and work on PostgreSQL
 * ```ts ignore
 * import { WorkerBuilder } from "@apalis/sqlite";
 * import { connectPostgres, PostgresStorage } from "@apalis/sqlite/postgres";
 *
 * const pg = await connectPostgres("postgres://app@db.internal:5432/app", { max: 10 });
 * await PostgresStorage.setup(pg); // idempotent; safe when many processes run it at once
 * const emails = new PostgresStorage<{ to: string }>(pg, "email");
 * await emails.push({ to: "ada@example.com" });
 * await new WorkerBuilder("mailer").backend(emails).build(async (email) => {
 *   // send it
 * }).run();
 * ```
 *
 * @module
 */

export {
  connectPostgres,
  type ConnectPostgresOptions,
  PostgresConnection,
  PostgresOperationError,
} from "./lib/postgres/connection.ts";
export { PostgresStorage, type PostgresStorageOptions } from "./lib/postgres/storage.ts";
export { PostgresBackend } from "./lib/postgres/backend.ts";
export { POSTGRES_SCHEMA_VERSION } from "./lib/postgres/schema.ts";
export type { ISql as PostgresExecutor, TransactionSql as PostgresTransaction } from "postgres";
