/**
 * PostgreSQL's place in the conformance suite: a fresh database per test on this process's
 * private cluster (`tests/_postgres.ts`), set up with `PostgresStorage.setup`, reached by a
 * `postgres://` URL. Without PostgreSQL the backend is unavailable, and the suite ignores its
 * tests saying why (or fails them when `APALIS_REQUIRE_BACKENDS` names `postgres`, as CI does).
 *
 * @module
 */
import type { AdminOptions, Config, StorageOptions } from "../../mod.ts";
import { connectPostgres, PostgresStorage } from "../../postgres.ts";
import { createDatabase, POSTGRES_MISSING, sharedCluster } from "../_postgres.ts";
import type { BackendUnderTest, TestConnection, TestDatabase } from "./_backends.ts";

/** The PostgreSQL backends of the suite: one, unavailable when PostgreSQL is not installed. */
export function postgresBackends(): Promise<BackendUnderTest[]> {
  return Promise.resolve([
    POSTGRES_MISSING === undefined ? postgres : {
      ...postgres,
      unavailable: POSTGRES_MISSING,
    },
  ]);
}

const postgres: BackendUnderTest = {
  name: "postgres",
  async fresh(): Promise<TestDatabase> {
    const url = await createDatabase(await sharedCluster());
    const main = await openPostgres(url, true);
    const others: TestConnection[] = [];
    return {
      ...main,
      backend: "postgres",
      location: url,
      async connect() {
        const other = await openPostgres(url, false);
        others.push(other);
        return other;
      },
      async [Symbol.asyncDispose]() {
        for (const other of others) await other.close();
        await main.close();
      },
    };
  },
  owns: (location) => /^postgres(ql)?:\/\//i.test(location),
  open: (location) => openPostgres(location, false),
};

async function openPostgres(url: string, setup: boolean): Promise<TestConnection> {
  const pg = await connectPostgres(url, { max: 4 });
  if (setup) await PostgresStorage.setup(pg);
  return {
    storage: <T>(queue: string | Config, options?: StorageOptions) =>
      new PostgresStorage<T>(pg, queue, options),
    admin: (options?: AdminOptions) => PostgresStorage.admin(pg, options),
    close: () => pg.close(),
  };
}
