/**
 * Running a program that obeys file modes, for tests of read-only files and directories. Root
 * ignores file modes, so a test process running as root cannot see what a read-only file does;
 * under `setpriv` without CAP_DAC_OVERRIDE, root obeys them like anyone else.
 *
 * @module
 */

/** The command prefix that runs a program unable to ignore file modes, or why there is none. */
export type Unprivileged = { prefix: string[] } | { why: string };

/**
 * How to run a program that obeys file modes here: as is for a normal user; for root, under
 * `setpriv` without CAP_DAC_OVERRIDE, if that works (checked on a real read-only file).
 */
export async function unprivileged(): Promise<Unprivileged> {
  if (Deno.uid() !== 0) return { prefix: [] };
  const drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"];
  const dir = await Deno.makeTempDir({ prefix: "apalis_probe_" });
  try {
    await Deno.writeTextFile(`${dir}/f`, "x");
    await Deno.chmod(`${dir}/f`, 0o444);
    const probe = await new Deno.Command(drop[0]!, {
      args: [...drop.slice(1), "sh", "-c", `test -w '${dir}/f' && echo writable || echo read-only`],
      stdout: "piped",
      stderr: "null",
    }).output();
    const said = new TextDecoder().decode(probe.stdout).trim();
    if (said === "read-only") return { prefix: drop };
    return { why: `running as root, and setpriv cannot drop CAP_DAC_OVERRIDE (${said})` };
  } catch (error) {
    return { why: `running as root without setpriv (${error})` };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A suffix for the names of tests that `runner` makes ignored, saying why. */
export function ignoredBecause(runner: Unprivileged): string {
  return "why" in runner ? ` [IGNORED: ${runner.why}; chmod cannot stop root from writing]` : "";
}

/** `argv` prefixed to run without the power to ignore file modes. */
export function withoutPrivileges(runner: Unprivileged, argv: readonly string[]): string[] {
  return "prefix" in runner ? [...runner.prefix, ...argv] : [...argv];
}
