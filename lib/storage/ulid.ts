const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

let lastTime = -1;
const lastRandom = new Uint8Array(16); // 16 base-32 digits = 80 bits
let timeText = "";
let timeTextOf = -1;
/** The first 15 random digits as text, while they stay the same (`headValid`). */
let headText = "";
let headValid = false;

/**
 * Returns a new ULID: 26 characters, sortable by creation time, monotonic within a millisecond
 * in this process.
 *
 * @example Usage
 * ```ts
 * import { ulid } from "./ulid.ts";
 *
 * const id = ulid();
 * if (id.length !== 26) throw new Error("not a ULID");
 * ```
 */
export function ulid(now: number = Date.now()): string {
  if (now > lastTime) {
    lastTime = now;
    crypto.getRandomValues(lastRandom);
    for (let i = 0; i < 16; i++) lastRandom[i]! &= 31;
    headValid = false;
  } else {
    // Same (or an earlier) millisecond: count up so ids stay ordered.
    let i = 15;
    while (i >= 0 && lastRandom[i] === 31) lastRandom[i--] = 0;
    if (i < 0) throw new RangeError("Cannot generate a ULID: the random part overflowed");
    lastRandom[i]!++;
    if (i < 15) headValid = false;
  }
  if (timeTextOf !== lastTime) {
    // Many ids share a millisecond (pushAll): encode its time part once.
    let time = lastTime;
    timeText = "";
    for (let i = 0; i < 10; i++) {
      timeText = ALPHABET[time % 32] + timeText;
      time = Math.floor(time / 32);
    }
    timeTextOf = lastTime;
  }
  if (!headValid) {
    // Counting up mostly changes the last digit: the other 15 are encoded once per carry.
    headText = timeText;
    for (let i = 0; i < 15; i++) headText += ALPHABET[lastRandom[i]!];
    headValid = true;
  }
  return headText + ALPHABET[lastRandom[15]!];
}
