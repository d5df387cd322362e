import assert from "node:assert/strict";
import { ulid } from "../../lib/storage/ulid.ts";

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

function timeOf(id: string): number {
  let time = 0;
  for (const char of id.slice(0, 10)) time = time * 32 + ALPHABET.indexOf(char);
  return time;
}

Deno.test("ulid() encodes the time and counts up within one millisecond and across them", () => {
  const base = Date.UTC(2026, 10, 28, 12);
  const ids = [
    ...Array.from({ length: 1000 }, () => ulid(base)),
    ...Array.from({ length: 10 }, () => ulid(base + 1)),
    ulid(base + 60_000),
  ];
  for (const id of ids) assert.match(id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
  assert.deepEqual(ids.slice(0, 1000).map(timeOf), new Array(1000).fill(base));
  assert.equal(timeOf(ids[1000]!), base + 1);
  assert.equal(timeOf(ids.at(-1)!), base + 60_000);
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i - 1]! < ids[i]!, `ids ${i - 1} and ${i}`);
  assert.equal(new Set(ids).size, ids.length);
});
