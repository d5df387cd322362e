/**
 * The suite's own harness: every required backend is in it, and each backend's connections
 * (another one in this process, one opened by location as a child process opens it) reach the
 * same database.
 *
 * @module
 */
import assert from "node:assert/strict";
import { BACKENDS, openLocation } from "./_backends.ts";
import { backendTest, REQUIRED_BACKENDS } from "./_suite.ts";

Deno.test("conformance suite: every backend APALIS_REQUIRE_BACKENDS names is in the suite and available", () => {
  for (const name of REQUIRED_BACKENDS) {
    const backend = BACKENDS.find((candidate) => candidate.name === name);
    assert.ok(
      backend,
      `APALIS_REQUIRE_BACKENDS names '${name}', but the suite has only: ${
        BACKENDS.map((b) => b.name).join(", ")
      }`,
    );
    assert.equal(backend.unavailable, undefined, `backend '${name}' is unavailable`);
  }
  assert.equal(BACKENDS[0]?.name, "sqlite", "SQLite is always in the suite");
});

backendTest(
  "TestDatabase: connect() and openLocation(location) reach the same database",
  async (db) => {
    const id = await db.storage<string>("harness").push("hello");
    const other = await db.connect();
    const byLocation = await openLocation(db.location);
    try {
      for (const connection of [other, byLocation]) {
        assert.equal((await connection.storage<string>("harness").fetchById(id))?.args, "hello");
        assert.equal((await connection.admin().stats("harness")).pending, 1);
      }
      await byLocation.storage<string>("harness").push("from the location");
      assert.equal((await db.admin().stats("harness")).pending, 2);
    } finally {
      await byLocation.close();
    }
  },
);
