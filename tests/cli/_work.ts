/**
 * Helpers for the tests of `apalis work`: run it in-process until a condition holds, read tasks.
 *
 * @module
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { SqliteStorage, type TaskRecord } from "../../mod.ts";
import { type CapturedIo, captureIo, main } from "../../lib/cli/mod.ts";
import { type TempDatabase, waitUntil } from "../_helpers.ts";

/** The queue the tests work on. */
export const QUEUE = "jobs";
/** This process's PATH, for the commands `--exec` runs. */
export const PATH = Deno.env.get("PATH");

/** How a `work` run ended and what it printed. */
export interface WorkRun {
  code: number;
  out: string;
  err: string;
}

/**
 * Runs `apalis work QUEUE ...args` in the background until `until()` holds, then interrupts it
 * (as Ctrl-C would) and returns its exit code and output. Fails at once if it exits by itself.
 */
export async function work(
  temp: TempDatabase,
  args: string[],
  until: () => Promise<boolean> | boolean,
  options: { isTerminal?: boolean; env?: Record<string, string>; what?: string } = {},
): Promise<WorkRun> {
  const io: CapturedIo = captureIo({
    env: { APALIS_DB: temp.path, PATH, ...options.env },
    isTerminal: options.isTerminal,
  });
  let exited = false;
  const running = main(["work", QUEUE, ...args], io).finally(() => exited = true);
  try {
    await waitUntil(
      async () => {
        if (exited) {
          throw new Error(`apalis work exited early with ${await running}: ${io.err}`);
        }
        return await until();
      },
      options.what ?? "the worker to finish its tasks",
      20_000,
    );
  } finally {
    io.interrupt();
  }
  const code = await running;
  return { code, out: io.out, err: io.err };
}

/** Runs a command that must exit by itself (usage errors). */
export async function run(path: string, args: string[]): Promise<WorkRun> {
  const io = captureIo({ env: { APALIS_DB: path, PATH } });
  const code = await main(args, io);
  return { code, out: io.out, err: io.err };
}

/** The storage of the tests' queue in `temp`. */
export function storageOf(temp: TempDatabase): SqliteStorage {
  return new SqliteStorage(temp.db, QUEUE);
}

/** The state of each of `ids`, in order. */
export async function statusesOf(storage: SqliteStorage, ids: string[]): Promise<string[]> {
  return await Promise.all(ids.map(async (id) => (await storage.fetchById(id))!.status));
}

/** The record of task `id`, which must exist. */
export async function fetch(storage: SqliteStorage, id: string): Promise<TaskRecord> {
  const task = await storage.fetchById(id);
  assert.ok(task, `task ${id} exists`);
  return task;
}

/** Whether the process `pid` is gone (or a zombie nobody reaped). */
export function processGone(pid: number): boolean {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0];
    return state === "Z" || state === "X";
  } catch {
    return true;
  }
}
