/**
 * PostgreSQL URLs without the PostgreSQL client: telling one from a file path, checking its
 * shape and hiding its password, for code that must not load the client (the CLI decides with
 * these whether to load it).
 *
 * @module
 */

/**
 * Whether `text` is a PostgreSQL URL: it starts with `postgres://` or `postgresql://`.
 *
 * @example Usage
 * ```ts
 * import { isPostgresUrl } from "./postgres_url.ts";
 * if (!isPostgresUrl("postgres://app@db:5432/app") || isPostgresUrl("jobs.db")) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function isPostgresUrl(text: string): boolean {
  return /^postgres(ql)?:\/\//.test(text);
}

/**
 * What is wrong with the shape of PostgreSQL URL `url` (a host that is not a host name, a port
 * that is not a number from 1 to 65535), or `undefined` when nothing is. Several hosts
 * (`postgres://app@db1:5432,db2:5432/app`, which the client tries in turn) are checked one by
 * one. Whether the server answers is not checked.
 *
 * @example Usage
 * ```ts
 * import { postgresUrlProblem } from "./postgres_url.ts";
 * if (postgresUrlProblem("postgres://app@db:5432/app") !== undefined) throw new Error("ok URL");
 * if (postgresUrlProblem("postgres://app@db:99999/app") === undefined) throw new Error("bad port");
 * ```
 */
export function postgresUrlProblem(url: string): string | undefined {
  const parts = splitUrl(url);
  if (!parts) return "it does not start with postgres:// or postgresql://";
  const hosts = parts.hosts.split(",");
  for (const host of hosts) {
    const parsed = URL.parse(`postgres://${host}`);
    if (!parsed || (hosts.length > 1 && host === "")) {
      return `'${host}' is not a host name with an optional port from 1 to 65535`;
    }
    if (parsed.port === "0") return `'${host}' has port 0 (ports go from 1 to 65535)`;
  }
  if (!URL.parse(`postgres://${hosts[0]}${parts.rest}`)) return "its path or query is not valid";
  return undefined;
}

/**
 * `url` with its password replaced by `***`, for messages and logs.
 *
 * @example Usage
 * ```ts
 * import { redactUrl } from "./postgres_url.ts";
 * if (redactUrl("postgres://app:s3cret@db/app") !== "postgres://app:***@db/app") {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function redactUrl(url: string): string {
  const parts = splitUrl(String(url));
  if (!parts) {
    const parsed = URL.parse(String(url));
    if (!parsed?.password) return String(url);
    parsed.password = "***";
    return parsed.toString();
  }
  // Split by hand rather than by URL: an unencoded '/' in a password must not leak as a path.
  const colon = parts.userinfo.indexOf(":");
  if (colon === -1) return String(url);
  return `${parts.scheme}${parts.userinfo.slice(0, colon)}:***@${parts.hosts}${parts.rest}`;
}

/**
 * `scheme://userinfo@hosts rest`: the user information runs to the last '@' before any '?' or
 * '#', so that a password with an unencoded '/' or '@' stays in it.
 */
function splitUrl(
  url: string,
): { scheme: string; userinfo: string; hosts: string; rest: string } | undefined {
  const match = /^(postgres(?:ql)?:\/\/)([^?#]*)(.*)$/s.exec(url);
  if (!match) return undefined;
  const [, scheme, beforeQuery, query] = match as unknown as [string, string, string, string];
  const at = beforeQuery.lastIndexOf("@");
  const userinfo = at === -1 ? "" : beforeQuery.slice(0, at);
  const afterUser = beforeQuery.slice(at + 1);
  const slash = afterUser.indexOf("/");
  return {
    scheme,
    userinfo,
    hosts: slash === -1 ? afterUser : afterUser.slice(0, slash),
    rest: (slash === -1 ? "" : afterUser.slice(slash)) + query,
  };
}
