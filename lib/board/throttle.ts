import type { Clock } from "../../mod.ts";

/** Failed attempts a client may make before it has to wait. */
const FREE_FAILURES = 5;
/** The first wait; each further failure doubles it… */
const FIRST_WAIT_MS = 1000;
/** …up to this, so nobody is ever locked out for longer. */
const MAX_WAIT_MS = 60_000;
/** A client's failures are forgotten this long after its last one. */
const FORGET_MS = 15 * 60_000;
/** Clients kept at most: the oldest is dropped beyond it (memory stays bounded). */
const MAX_CLIENTS = 10_000;
/** Failures from all clients within a minute past which every failure makes its client wait. */
const BUSY_FAILURES = 100;
const BUSY_WINDOW_MS = 60_000;

interface Client {
  failures: number;
  lastFailure: number;
  /** Epoch ms until which its attempts are refused unchecked. */
  until: number;
}

/**
 * Slows down guessing of the board's token, per client address. A client's first 5 failures
 * are answered at once; the 5th makes it wait 1 s, and each further one doubles the wait, up to
 * 60 s. While it waits, its attempts are refused without being checked (so the answer does not
 * tell a right token from a wrong one). 15 minutes without a failure start the count again; a
 * success does not (behind a proxy, clients share an address: an operator's logins must not
 * give an attacker there fresh tries). When more than 100 failures come from all clients within
 * a minute (a guess spread over many addresses), every failure makes its client wait. IPv6
 * addresses count by /64, the block one host usually holds. At most 10,000 clients are kept:
 * the oldest go first.
 *
 * @example Usage
 * ```ts
 * import { LoginThrottle } from "./throttle.ts";
 *
 * const throttle = new LoginThrottle({ now: () => 1_000_000 }); // a clock that stands still
 * for (let i = 0; i < 5; i++) throttle.failed("192.0.2.1");
 * if (throttle.waitMs("192.0.2.1") !== 1000) throw new Error("unexpected");
 * ```
 */
export class LoginThrottle {
  readonly #clock: Clock;
  readonly #clients = new Map<string, Client>();
  /** When the last failures happened (all clients), oldest first, at most BUSY_FAILURES. */
  readonly #recent: number[] = [];

  /** @param clock where time comes from */
  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** How many clients are remembered. */
  get size(): number {
    return this.#clients.size;
  }

  /** How long `address` must wait before its next attempt is checked (0: it may try now). */
  waitMs(address: string): number {
    const client = this.#clients.get(clientKey(address));
    return client ? Math.max(0, client.until - this.#clock.now()) : 0;
  }

  /** Records a failed attempt from `address`. */
  failed(address: string): void {
    const now = this.#clock.now();
    const key = clientKey(address);
    const known = this.#clients.get(key);
    const client: Client = known && now - known.lastFailure < FORGET_MS
      ? known
      : { failures: 0, lastFailure: now, until: 0 };
    client.failures++;
    client.lastFailure = now;
    const busy = this.#busy(now);
    const over = client.failures - (busy ? 1 : FREE_FAILURES);
    if (over >= 0) client.until = now + Math.min(MAX_WAIT_MS, FIRST_WAIT_MS * 2 ** over);
    // Newest last: the first entry is always the one to drop.
    this.#clients.delete(key);
    this.#clients.set(key, client);
    for (const oldest of this.#clients.keys()) {
      if (this.#clients.size <= MAX_CLIENTS) break;
      // Even a client that is waiting goes: the map must not grow (it only gets a fresh count).
      this.#clients.delete(oldest);
    }
  }

  /** Notes a failure at `now`; whether the failures of the last minute are over the limit. */
  #busy(now: number): boolean {
    this.#recent.push(now);
    if (this.#recent.length > BUSY_FAILURES + 1) this.#recent.shift();
    return this.#recent.length > BUSY_FAILURES && now - this.#recent[0]! < BUSY_WINDOW_MS;
  }
}

/** An IPv4 address as is; an IPv6 address by its first 64 bits. */
function clientKey(address: string): string {
  if (!address.includes(":")) return address;
  const mapped = /^(?:0*:)*:?ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  const [head = "", tail = ""] = address.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = address.includes("::")
    ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right]
    : left;
  return `${
    groups.slice(0, 4).map((g) => Number.parseInt(g || "0", 16).toString(16)).join(":")
  }::/64`;
}
