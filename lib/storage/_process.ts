import process from "node:process";
import { hostname } from "node:os";

/** This process's id. */
export const PROCESS_ID: number = process.pid;

/** This machine's host name (`"unknown"` when the runtime may not read it). */
export const HOST_NAME: string = (() => {
  try {
    return hostname();
  } catch {
    return "unknown";
  }
})();

/** Whether a process with this id exists on this machine. */
export function processAlive(pid: number): boolean {
  if (pid === PROCESS_ID) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as { code?: string }).code === "EPERM";
  }
}
