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
    // Only "no such process" proves death. EPERM means it exists; a runtime permission error
    // (Deno without --allow-run) proves nothing, so the heartbeat age decides instead.
    return (error as { code?: string }).code !== "ESRCH";
  }
}
