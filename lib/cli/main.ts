import { EXIT, UsageError } from "./errors.ts";
import type { Command, GlobalOptions } from "./command.ts";
import type { CliIo } from "./io.ts";
import { COMMANDS } from "./commands/mod.ts";
import { VERSION } from "./version.ts";

const PROGRAM_HELP = `apalis ${VERSION}: a durable task queue in one SQLite file, or in PostgreSQL

Usage: apalis [--db PATH|URL] [--json] <command> [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(9)} ${c.summary}`).join("\n")}

Global options:
  --db PATH|URL  the database: a SQLite file, or a PostgreSQL URL such as
                 postgres://USER:PASSWORD@HOST:5432/DATABASE (default: $APALIS_DB, else
                 ./apalis.db)
  --json         print data as JSON (every command that prints data)
  -h, --help     show help (also: apalis <command> --help)
  -V, --version  print the version (as 'apalis version')

Exit codes: 0 success, 1 operational failure, 2 bad usage or input, 141 when the reader of
the output went away (apalis ls | head -1), as for a command ended by SIGPIPE.
`;

/** Flags that stand for a command when they come first: \`apalis --version\`. */
const COMMAND_FLAGS: ReadonlyMap<string, string> = new Map([
  ["--version", "version"],
  ["-V", "version"],
]);

/**
 * Runs the CLI with `args` (without the program name) and returns the exit code. Writes only to
 * `io`, so tests can capture everything.
 *
 * @example Usage
 * ```ts ignore
 * import { captureIo, main } from "./lib/cli/mod.ts";
 * const io = captureIo();
 * const code = await main(["--db", "jobs.db", "stats", "--json"], io);
 * ```
 */
export async function main(args: readonly string[], io: CliIo): Promise<number> {
  let globals: GlobalOptions;
  let rest: string[];
  let help: boolean;
  try {
    ({ globals, rest, help } = extractGlobals(args, io));
  } catch (error) {
    return fail(io, error);
  }
  const [first, ...commandArgs] = rest;
  const name = first === undefined ? undefined : COMMAND_FLAGS.get(first) ?? first;
  if (name === undefined) {
    io[help ? "stdout" : "stderr"](PROGRAM_HELP);
    return help ? EXIT.ok : EXIT.usage;
  }
  const command: Command | undefined = COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.stderr(`apalis: unknown command '${name}' (see 'apalis --help')\n`);
    return EXIT.usage;
  }
  if (help) {
    io.stdout(command.help.endsWith("\n") ? command.help : `${command.help}\n`);
    return EXIT.ok;
  }
  try {
    return await command.run({ io, args: commandArgs, globals });
  } catch (error) {
    return fail(io, error, command.name);
  }
}

function fail(io: CliIo, error: unknown, command?: string): number {
  const prefix = command ? `apalis ${command}` : "apalis";
  const message = error instanceof Error ? error.message : String(error);
  io.stderr(`${prefix}: ${message}\n`);
  return error instanceof UsageError ? EXIT.usage : EXIT.failure;
}

/** Pulls `--db`, `--json` and `--help` out of the arguments, wherever they stand. */
function extractGlobals(
  args: readonly string[],
  io: CliIo,
): { globals: GlobalOptions; rest: string[]; help: boolean } {
  let db = io.env.APALIS_DB || "./apalis.db";
  let json = false;
  let help = false;
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      rest.push(...args.slice(i));
      break;
    }
    if (arg === "--json") json = true;
    else if (arg === "--help" || arg === "-h") help = true;
    else if (arg === "--db") {
      const value = args[++i];
      if (value === undefined || value === "") throw new UsageError("option '--db' needs a path");
      db = value;
    } else if (arg.startsWith("--db=")) {
      db = arg.slice("--db=".length);
      if (db === "") throw new UsageError("option '--db' needs a path");
    } else rest.push(arg);
  }
  return { globals: { db, json }, rest, help };
}
