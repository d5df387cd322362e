// deno-lint-ignore-file no-console
/**
 * A worker process for the cross-process retention test: one worker of a queue with a
 * retention, on a database opened by its location, through the public API only. Its clock runs
 * `--clock-offset-ms` ahead of this host's, so that tasks finished by the parent "now" are
 * already old to it.
 *
 * Usage:
 *   deno run -A tests/backend/retention_child.ts --location LOCATION --name NAME --queue Q
 *     --done 12h --killed 20h --every 100ms --batch 100 --clock-offset-ms 86400000 --record PATH
 *
 * --record PATH   appends one line per retention batch that deleted, in one write(2) on an
 *                 O_APPEND descriptor: "NAME HELD_FROM HELD_TO TASKS RUNS" (see `readBatches`)
 *
 * Prints `ready NAME PID` once its worker has registered; SIGTERM stops it gracefully (exit 0).
 * Anything that goes wrong goes to stderr (fatal: exit 1).
 *
 * @module
 */
import { closeSync, openSync, writeSync } from "node:fs";
import process from "node:process";
import { parseArgs } from "node:util";
import { Config, WorkerBuilder } from "../../mod.ts";
import { openLocation } from "./_backends.ts";

/** A line of `--record`: one batch of one holder. */
export interface RetentionBatch {
  holder: string;
  heldFrom: number;
  heldTo: number;
  tasks: number;
  runs: number;
}

/** The batches recorded in `path`. */
export async function readBatches(path: string): Promise<RetentionBatch[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  return text.split("\n").filter((line) => line !== "").map((line) => {
    const [holder, heldFrom, heldTo, tasks, runs] = line.split(" ");
    if (!holder || !heldFrom || !heldTo || !tasks || !runs) {
      throw new Error(`a whole line: ${line}`);
    }
    return {
      holder,
      heldFrom: Number(heldFrom),
      heldTo: Number(heldTo),
      tasks: Number(tasks),
      runs: Number(runs),
    };
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      location: { type: "string" },
      name: { type: "string" },
      queue: { type: "string" },
      done: { type: "string" },
      killed: { type: "string" },
      every: { type: "string" },
      batch: { type: "string" },
      "clock-offset-ms": { type: "string" },
      record: { type: "string" },
    },
    strict: true,
  });
  const { location, name, queue, record } = values;
  if (!location || !name || !queue || !record) {
    throw new TypeError("--location, --name, --queue and --record are required");
  }
  const offset = Number(values["clock-offset-ms"] ?? 0);
  const config = new Config(queue).withPollInterval(50).setRetention({
    done: values.done ?? "7d",
    killed: values.killed ?? "30d",
    every: values.every ?? "1m",
    batchSize: Number(values.batch ?? 1000),
  });
  const log = openSync(record, "a");
  const connection = await openLocation(location);
  const storage = connection.storage<unknown>(config, {
    clock: { now: () => Date.now() + offset },
  });
  const worker = new WorkerBuilder(name)
    .backend(storage)
    .handleSignals(true)
    .onEvent((_ctx, event) => {
      if (event.type === "start") console.log(`ready ${name} ${process.pid}`);
      if (event.type === "retention") {
        const fields = [name, event.heldFrom, event.heldTo, event.tasks, event.runs];
        writeSync(log, `${fields.join(" ")}\n`);
      }
      if (event.type === "error") {
        const error = event.error;
        console.error(
          `worker ${name} (pid ${process.pid}): ${
            error instanceof Error ? `${error.name}: ${error.message}` : String(error)
          }`,
        );
      }
    })
    .build((args) => args);
  try {
    await worker.run();
  } finally {
    closeSync(log);
    await connection.close();
  }
}

if (import.meta.main) {
  try {
    await main();
    process.exit(0);
  } catch (error) {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  }
}
