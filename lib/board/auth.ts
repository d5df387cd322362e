/** The login cookie's name. */
export const COOKIE = "apalis_board";

/**
 * Checks a board request's credentials: `Authorization: Bearer <token>` or the login cookie.
 * The cookie holds a digest of the token, not the token, and both are compared as digests of
 * equal length in constant time.
 */
export class BoardAuth {
  readonly #digest: Promise<string>;
  readonly #path: string;

  /** @param token the token to require; @param path the cookie's path (the mount point) */
  constructor(token: string, path: string) {
    this.#digest = digest(`apalis-board:${token}`);
    this.#path = path || "/";
  }

  /** Whether the request carries the token or a valid login cookie. */
  async allows(req: Request): Promise<boolean> {
    const expected = await this.#digest;
    const authorization = req.headers.get("authorization");
    if (authorization?.toLowerCase().startsWith("bearer ")) {
      return sameText(await digest(`apalis-board:${authorization.slice(7).trim()}`), expected);
    }
    const cookie = readCookie(req.headers.get("cookie"), COOKIE);
    return cookie !== undefined && sameText(cookie, expected);
  }

  /** Whether `token` is the right one (the login form). */
  async accepts(token: string): Promise<boolean> {
    return sameText(await digest(`apalis-board:${token}`), await this.#digest);
  }

  /** The `Set-Cookie` value that logs a browser in. */
  async loginCookie(secure: boolean): Promise<string> {
    return `${COOKIE}=${await this.#digest}; Path=${this.#path}; HttpOnly; SameSite=Strict${
      secure ? "; Secure" : ""
    }`;
  }

  /** The `Set-Cookie` value that logs a browser out. */
  logoutCookie(): string {
    return `${COOKIE}=; Path=${this.#path}; HttpOnly; SameSite=Strict; Max-Age=0`;
  }
}

async function digest(text: string): Promise<string> {
  const bytes = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function sameText(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

function readCookie(header: string | null, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
