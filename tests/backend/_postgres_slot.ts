/**
 * PostgreSQL's place in the conformance suite.
 *
 * TO ADD POSTGRESQL (once `tests/_postgres.ts` exists, on the `postgres` branch): return its
 * backend here, e.g.
 *
 * ```text
 * import { postgresBackend } from "../_postgres.ts";
 * export async function postgresBackends(): Promise<BackendUnderTest[]> {
 *   return [await postgresBackend()];
 * }
 * ```
 *
 * where `postgresBackend()` resolves to a {@linkcode BackendUnderTest} named `"postgres"`:
 * `fresh()` creates an empty database (or schema) on the private cluster and runs
 * `PostgresStorage.setup`, with `location` a `postgres://` URL that reaches it; `owns()` accepts
 * `postgres://` and `postgresql://` URLs; `open()` connects to one. When no server is reachable
 * it sets `unavailable` to the reason: the suite then ignores its tests and says why (and fails
 * them when `APALIS_REQUIRE_BACKENDS` names `postgres`, as CI must).
 *
 * @module
 */
import type { BackendUnderTest } from "./_backends.ts";

/** The PostgreSQL backends of the suite: none on this branch yet. */
export function postgresBackends(): Promise<BackendUnderTest[]> {
  return Promise.resolve([]);
}
