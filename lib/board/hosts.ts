// Which `Host` names a board answers. A page on an attacker's domain whose DNS answer changes to
// 127.0.0.1 (DNS rebinding) reaches the board as a same-origin page of that domain: the browser
// then sends the attacker's name in `Host`, and refusing unknown names is what stops it.

/** A name as the board compares it: lower case, no trailing dot, IPv6 in brackets. */
type HostName = string;

/** Which host names a board answers. */
export interface HostPolicy {
  /** Whether `host` (a `Host` header's value, or a URL's host) may be answered. */
  allows(host: string): boolean;
}

// A host as a client may send it: a name or IPv4 address, or an IPv6 address in brackets, and
// a port. Anything else (user info, a path, spaces) is not a host.
const HOST_HEADER = /^(\[[0-9a-f:.]+\]|[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?)(?::\d{1,5})?$/i;
const NAME = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;
const IPV4 = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

/**
 * A policy that answers loopback names (`localhost` and names under `.localhost`, which RFC 6761
 * reserves and browsers resolve to this machine themselves; `127.0.0.0/8`; `[::1]`), the names
 * in `allowed` (`.example.com` for that domain and every name under it, `*` for any), and with
 * `anyIp` every IP address (an address is not looked up, so DNS cannot rebind it). Ports are
 * not compared: a forwarded port (`ssh -L`) changes them.
 *
 * @throws {TypeError} naming the entry of `allowed` that is not a host name
 */
export function hostPolicy(allowed: readonly string[], anyIp: boolean): HostPolicy {
  const problem = allowedHostsProblem(allowed);
  if (problem) throw new TypeError(`Cannot create the board: 'allowedHosts' entries ${problem}`);
  const exact = new Set<HostName>();
  const domains: HostName[] = [];
  let any = false;
  for (const entry of allowed) {
    const name = allowedEntry(entry)!;
    if (name === "*") any = true;
    else if (name.startsWith(".")) domains.push(name);
    else exact.add(name);
  }
  return {
    allows(host: string): boolean {
      if (any) return true;
      const name = hostName(host);
      if (name === undefined) return false;
      if (isLoopback(name) || exact.has(name)) return true;
      if (anyIp && isIpAddress(name)) return true;
      return domains.some((domain) => name === domain.slice(1) || name.endsWith(domain));
    },
  };
}

/** Whether the board listens on this machine only (serveBoard's `hostname`). */
export function isLoopbackAddress(hostname: string): boolean {
  const name = hostName(
    hostname.includes(":") && !hostname.startsWith("[") ? `[${hostname}]` : hostname,
  );
  return name !== undefined && isLoopback(name);
}

function isLoopback(name: HostName): boolean {
  return name === "localhost" || name.endsWith(".localhost") || name === "[::1]" ||
    (IPV4.test(name) && name.startsWith("127."));
}

function isIpAddress(name: HostName): boolean {
  return name.startsWith("[") || IPV4.test(name);
}

/** The host name of a `Host` value, normalised as a URL normalises it; undefined if malformed. */
function hostName(host: string): HostName | undefined {
  if (!HOST_HEADER.test(host)) return undefined;
  let name: string;
  try {
    name = new URL(`http://${host}/`).hostname;
  } catch {
    return undefined;
  }
  return name.endsWith(".") ? name.slice(0, -1) : name;
}

/**
 * Why an entry of `allowedHosts` (of `createBoardHandler` and `serveBoard`) is not a host name,
 * as the end of a sentence ("'allowedHosts' entries …"), or `undefined` when every entry is
 * one. The board throws a `TypeError` with it; check a list you read from a user (a command
 * line, a config file) with it first to report it your way.
 *
 * @example Check hosts given on a command line
 * ```ts
 * import { allowedHostsProblem } from "@apalis/sqlite/board";
 *
 * if (allowedHostsProblem(["jobs.example.com", ".example.org", "*"]) !== undefined) {
 *   throw new Error("these are host names");
 * }
 * const problem = allowedHostsProblem(["https://jobs.example.com/"]);
 * if (!problem?.includes('current value is "https://jobs.example.com/"')) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function allowedHostsProblem(entries: readonly string[]): string | undefined {
  const bad = entries.find((entry) => allowedEntry(entry) === undefined);
  return bad === undefined
    ? undefined
    : `must be a host name like "board.example.com", ".example.com" (that domain and the names under it) or "*", without a scheme, port or path: current value is ${
      JSON.stringify(bad)
    }`;
}

/** An entry of `allowedHosts` as compared, or undefined when it is not a host name. */
function allowedEntry(entry: string): HostName | undefined {
  if (typeof entry !== "string") return undefined;
  const text = entry.trim().toLowerCase();
  if (text === "*") return text;
  const domain = text.startsWith(".");
  const rest = domain ? text.slice(1) : text;
  const ipv6 = rest.includes(":");
  const bracketed = ipv6 && !rest.startsWith("[") ? `[${rest}]` : rest;
  if (ipv6 ? domain || !/^\[[0-9a-f:.]+\]$/.test(bracketed) : !NAME.test(rest)) return undefined;
  const name = hostName(bracketed);
  return name === undefined ? undefined : domain ? `.${name}` : name;
}
