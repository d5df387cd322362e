// deno-lint-ignore-file no-console
/**
 * Enqueue atomically with the application's own write: the user row and their welcome email
 * task commit together, or neither does.
 *
 * Run with `deno run -A examples/pushsync.ts` or `bun run examples/pushsync.ts`.
 *
 * @module
 */
import { openDatabase, SqliteStorage, WorkerBuilder } from "../mod.ts";

interface Welcome {
  userId: number;
  email: string;
}

// The queue's tables are prefixed (apalis_*), so they share the application's database file.
const db = openDatabase(":memory:");
SqliteStorage.setup(db);
db.exec("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE)");
const welcome = new SqliteStorage<Welcome>(db, "welcome-email");

function signUp(email: string): string {
  return db.transaction(() => {
    const user = db.get<{ id: number }>(
      "INSERT INTO users (email) VALUES (?) RETURNING id",
      [email],
    )!;
    const taskId = welcome.pushSync({ userId: user.id, email });
    // Anything that throws from here on rolls back the user row and the task alike.
    if (!email.includes("@example.com")) throw new Error(`'${email}' is not allowed to sign up`);
    return taskId;
  });
}

const taskId = signUp("ada@example.com");
console.log(`signed up ada@example.com: user row and welcome task ${taskId} committed together`);

try {
  signUp("mallory@elsewhere.test");
} catch (error) {
  console.log(`signup rolled back: ${(error as Error).message}`);
}

const users = db.get<{ n: number }>("SELECT count(*) AS n FROM users")!.n;
const tasks = (await welcome.stats()).total;
console.log(`users: ${users}, welcome tasks: ${tasks}`);

const worker = new WorkerBuilder("welcome-mailer")
  .backend(welcome)
  .handleSignals(false)
  .build((message, ctx) => {
    ctx.worker.stop(); // one task in this example
    return `welcome email sent to ${message.email} (user ${message.userId})`;
  });
await worker.run();
const [task] = await welcome.waitFor([taskId]);
console.log(`${task?.status}: ${task?.lastResult}`);
db.close();
