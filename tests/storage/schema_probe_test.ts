/**
 * SchemaProbe: a feature seen once is known for good; a "not yet" holds for `recheckMs`, then the
 * check runs again (an upgrade by another process is noticed); a check that throws is no answer.
 *
 * @module
 */
import assert from "node:assert/strict";
import { SchemaProbe } from "../../lib/backend/schema_probe.ts";

Deno.test("SchemaProbe re-checks a missing feature after recheckMs, and never again once present", async () => {
  const probe = new SchemaProbe(30);
  let present = false;
  let checks = 0;
  const check = () => (checks++, present);
  assert.equal(probe.has(check), false);
  present = true; // upgraded meanwhile
  assert.equal(probe.has(check), false, "the answer holds for recheckMs");
  assert.equal(checks, 1);
  await new Promise((resolve) => setTimeout(resolve, 40));
  assert.equal(probe.has(check), true);
  assert.equal(probe.has(check), true);
  assert.equal(checks, 2, "a present feature is not checked again");
});

Deno.test("SchemaProbe.hasAsync: a check that throws is tried again at the next call", async () => {
  const probe = new SchemaProbe(60_000);
  let fail = true;
  const check = () => fail ? Promise.reject(new Error("connection lost")) : Promise.resolve(true);
  await assert.rejects(probe.hasAsync(check), /connection lost/);
  fail = false;
  assert.equal(await probe.hasAsync(check), true);
});
