import type { Command } from "../command.ts";
import { initCommand } from "./init.ts";
import { pushCommand } from "./push.ts";
import { workCommand } from "./work.ts";
import { lsCommand } from "./ls.ts";
import { showCommand } from "./show.ts";
import { logsCommand } from "./logs.ts";
import { statsCommand } from "./stats.ts";
import { metricsCommand } from "./metrics.ts";
import { queuesCommand } from "./queues.ts";
import { workersCommand } from "./workers.ts";
import { retryCommand } from "./retry.ts";
import { cronCommand } from "./cron.ts";
import { killCommand } from "./kill.ts";
import { vacuumCommand } from "./vacuum.ts";
import { pauseCommand, resumeCommand } from "./pause.ts";
import { limitsCommand } from "./limits.ts";
import { boardCommand } from "./board.ts";
import { versionCommand } from "./version.ts";

/** Every command, in the order the help lists them. */
export const COMMANDS: readonly Command[] = [
  initCommand,
  pushCommand,
  workCommand,
  lsCommand,
  showCommand,
  logsCommand,
  statsCommand,
  metricsCommand,
  queuesCommand,
  workersCommand,
  cronCommand,
  retryCommand,
  killCommand,
  pauseCommand,
  resumeCommand,
  limitsCommand,
  vacuumCommand,
  boardCommand,
  versionCommand,
];
