import type { Clock } from "../../mod.ts";
import { LoginThrottle } from "./throttle.ts";

/** The login cookie's name. */
export const COOKIE = "apalis_board";

/** How long a login lasts by default: 12 hours. */
export const DEFAULT_SESSION_MS = 12 * 3_600_000;
/** Browsers keep a cookie 400 days at most. */
const MAX_SESSION_MS = 400 * 24 * 3_600_000;

const encoder = new TextEncoder();

/** What a request's credentials came to. */
export type Verdict =
  | { ok: true }
  /** `waitMs` > 0: refused unchecked, this client failed too often (see `LoginThrottle`). */
  | { ok: false; waitMs: number };

/**
 * Checks a board request's credentials: `Authorization: Bearer <token>` or the login cookie.
 *
 * The cookie is `<issued-at>.<HMAC-SHA-256 of it>`, keyed by a random secret made when the board
 * starts: nothing about it follows from the token, a restart logs everyone out, and it is
 * refused once `sessionMs` have passed since the login (the browser drops it then too:
 * `Max-Age`). Tokens are compared as MACs of equal length, in constant time. Wrong tokens (at
 * the login form or as a bearer) are counted per client address by a {@linkcode LoginThrottle}.
 */
export class BoardAuth {
  readonly #key: Promise<CryptoKey>;
  readonly #expected: Promise<Uint8Array>;
  readonly #path: string;
  readonly #clock: Clock;
  readonly #sessionMs: number;
  readonly #throttle: LoginThrottle;

  /**
   * @param token the token to require
   * @param options `path`: the cookie's path (the mount point); `sessionMs`: how long a login
   * lasts; `clock`: where time comes from
   */
  constructor(token: string, options: { path: string; sessionMs: number; clock: Clock }) {
    this.#key = crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
      "verify",
    ]) as Promise<CryptoKey>;
    this.#expected = this.#mac(`token:${token}`);
    this.#path = options.path || "/";
    this.#clock = options.clock;
    this.#sessionMs = options.sessionMs;
    this.#throttle = new LoginThrottle(options.clock);
  }

  /**
   * Whether the request carries the token (as a bearer) or a valid login cookie. `client` is
   * the client's address, for counting wrong tokens.
   */
  async allows(req: Request, client: string): Promise<Verdict> {
    const authorization = req.headers.get("authorization");
    if (authorization?.toLowerCase().startsWith("bearer ")) {
      return await this.accepts(authorization.slice(7).trim(), client);
    }
    const cookie = readCookie(req.headers.get("cookie"), COOKIE);
    return cookie !== undefined && await this.#validSession(cookie)
      ? { ok: true }
      : { ok: false, waitMs: 0 };
  }

  /** Whether `token` is the right one (the login form, a bearer), counting wrong ones. */
  async accepts(token: string, client: string): Promise<Verdict> {
    const waitMs = this.#throttle.waitMs(client);
    if (waitMs > 0) return { ok: false, waitMs };
    if (sameBytes(await this.#mac(`token:${token}`), await this.#expected)) return { ok: true };
    this.#throttle.failed(client);
    return { ok: false, waitMs: 0 };
  }

  /** The `Set-Cookie` value that logs a browser in, until `sessionMs` from now. */
  async loginCookie(secure: boolean): Promise<string> {
    const issued = this.#clock.now().toString(36);
    const value = `${issued}.${base64url(await this.#mac(`session:${issued}`))}`;
    return `${COOKIE}=${value}; Path=${this.#path}; Max-Age=${
      Math.floor(this.#sessionMs / 1000)
    }; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`;
  }

  /** The `Set-Cookie` value that logs a browser out. */
  logoutCookie(): string {
    return `${COOKIE}=; Path=${this.#path}; HttpOnly; SameSite=Strict; Max-Age=0`;
  }

  async #validSession(cookie: string): Promise<boolean> {
    const match = /^([0-9a-z]{1,11})\.([A-Za-z0-9_-]{43})$/.exec(cookie);
    if (!match) return false;
    const issuedAt = parseInt(match[1]!, 36);
    const age = this.#clock.now() - issuedAt;
    // A minute's leeway for a clock that was set back since the login.
    if (!(age > -60_000 && age < this.#sessionMs)) return false;
    return await crypto.subtle.verify(
      "HMAC",
      await this.#key,
      fromBase64url(match[2]!),
      encoder.encode(`session:${match[1]}`),
    );
  }

  async #mac(text: string): Promise<Uint8Array> {
    return new Uint8Array(
      await crypto.subtle.sign("HMAC", await this.#key, encoder.encode(text)),
    );
  }
}

/** Checks `sessionMs` (the board's option): whole milliseconds from 1 s to 400 days. */
export function checkSessionMs(sessionMs: number): number {
  if (!Number.isSafeInteger(sessionMs) || sessionMs < 1000 || sessionMs > MAX_SESSION_MS) {
    throw new RangeError(
      `Cannot create the board: 'sessionMs' must be an integer from 1000 (1 s) to ${MAX_SESSION_MS} (400 days): current value is ${sessionMs}`,
    );
  }
  return sessionMs;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}

function fromBase64url(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function readCookie(header: string | null, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
