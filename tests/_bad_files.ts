/**
 * Makes files for the bad-file tests: a healthy database to damage, and the damage.
 *
 * @module
 */
import { openDatabase, SqliteStorage } from "../mod.ts";

/** A set-up database with `tasks` tasks on queue `q`, closed cleanly (no -wal or -shm left). */
export function makeDatabase(path: string, tasks = 200): void {
  const db = openDatabase(path);
  SqliteStorage.setup(db);
  const queue = new SqliteStorage<{ i: number; pad: string }>(db, "q");
  db.transaction(() => {
    for (let i = 0; i < tasks; i++) queue.pushSync({ i, pad: "p".repeat(500) });
  });
  db.close();
}

/** Overwrites `length` bytes at `offset` with garbage that is never a valid page. */
export async function scribble(path: string, offset: number, length: number): Promise<void> {
  const garbage = new Uint8Array(length);
  for (let i = 0; i < length; i++) garbage[i] = (i * 131 + 7) % 251;
  using file = await Deno.open(path, { read: true, write: true });
  await file.seek(offset, Deno.SeekMode.Start);
  let written = 0;
  while (written < length) written += await file.write(garbage.subarray(written));
}
