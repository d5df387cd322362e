/**
 * Runs a command to its end and returns its exit code and decoded output.
 *
 * @module
 */

/** How a finished command ended and what it printed. */
export interface CommandRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `command` with `options` (stdout and stderr piped) and decodes what it printed. */
export async function runCommand(
  command: string | URL,
  options: Omit<Deno.CommandOptions, "stdout" | "stderr">,
): Promise<CommandRun> {
  const output = await new Deno.Command(command, {
    ...options,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}
