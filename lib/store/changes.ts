import type { Database } from "../sqlite/types.ts";

/**
 * SQLite's `data_version`: a number that changes whenever another connection (in this process or
 * any other) commits to the file. Cheap: it reads shared memory, not the database.
 */
export function dataVersion(db: Database): number {
  return db.get<{ data_version: number }>("PRAGMA data_version")!.data_version;
}
