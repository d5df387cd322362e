/**
 * Conformance: Prometheus metrics (`renderMetrics`, `Admin.metrics`). The text for known data,
 * word for word, on every backend (label values escaped); outcome counters that several worker
 * processes feed and that vacuum does not lower; workers alive across processes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { renderMetrics } from "../../board.ts";
import { Task, WorkerBuilder } from "../../mod.ts";
import { backendTest, FakeClock, waitUntil } from "./_suite.ts";
import { spawnChild, stopChild } from "./_child.ts";

/** A queue name with every character the format escapes. */
const WEIRD = 'we"ird\\q\nx';

/** The samples of a metrics text, by series (`name{labels}`). */
function samples(text: string): Map<string, number> {
  const map = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    map.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return map;
}

backendTest("renderMetrics() writes known data in the Prometheus text format", async (db) => {
  const clock = new FakeClock(Date.UTC(2026, 0, 1, 12, 0, 0));
  const alpha = db.storage<number>("alpha", { clock });
  const weird = db.storage<number>(WEIRD, { clock });
  const admin = db.admin({ clock });
  const handler = (n: number) => {
    if (n === 1) clock.advance(300); // runs 0.3 s
    if (n === 2) clock.advance(7); // runs 7 ms
    if (n === 3) throw new Error("fails; its retry is never due (the clock stands still)");
    return n;
  };
  const runOne = async (n: number, waitMs: number) => {
    const id = await alpha.push(n);
    clock.advance(waitMs); // due at push, claimed this much later
    const worker = new WorkerBuilder(`w${n}`).backend(alpha).handleSignals(false).build(handler);
    const finished = n === 3
      ? waitUntil(async () => (await alpha.fetchById(id))?.status === "failed", "a failure")
      : alpha.waitFor([id], { timeoutMs: 10_000 }).then(() => {});
    await worker.runUntil(finished);
    return id;
  };
  await runOne(1, 2000);
  await runOne(2, 40);
  await admin.kill(await runOne(3, 0)); // a failed attempt, then killed by hand
  await admin.kill(await alpha.push(4)); // killed while pending
  await alpha.push(5, { runAfter: 60_000 }); // scheduled: pending, not due
  await alpha.push(6, { runAt: clock.now() - 5000 }); // due for 5 s
  await weird.push(7);

  const zeros = "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0".split(",").map(Number);
  const buckets = (name: string, queue: string, counts: number[], total: number) =>
    [
      "0.005",
      "0.01",
      "0.025",
      "0.05",
      "0.1",
      "0.25",
      "0.5",
      "1",
      "2.5",
      "5",
      "10",
      "30",
      "60",
      "300",
      "900",
      "3600",
    ].map((le, i) => `${name}_bucket{queue="${queue}",le="${le}"} ${counts[i]}`)
      .concat(`${name}_bucket{queue="${queue}",le="+Inf"} ${total}`).join("\n");
  const q = 'we\\"ird\\\\q\\nx'; // WEIRD, escaped
  const expected = `# HELP apalis_tasks Tasks in each state, per queue.
# TYPE apalis_tasks gauge
apalis_tasks{queue="alpha",state="pending"} 2
apalis_tasks{queue="alpha",state="queued"} 0
apalis_tasks{queue="alpha",state="running"} 0
apalis_tasks{queue="alpha",state="done"} 2
apalis_tasks{queue="alpha",state="failed"} 0
apalis_tasks{queue="alpha",state="killed"} 2
apalis_tasks{queue="${q}",state="pending"} 1
apalis_tasks{queue="${q}",state="queued"} 0
apalis_tasks{queue="${q}",state="running"} 0
apalis_tasks{queue="${q}",state="done"} 0
apalis_tasks{queue="${q}",state="failed"} 0
apalis_tasks{queue="${q}",state="killed"} 0
# HELP apalis_tasks_started_total Attempts started, since the database was set up (counted at the worker's next write after the start).
# TYPE apalis_tasks_started_total counter
apalis_tasks_started_total{queue="alpha"} 3
apalis_tasks_started_total{queue="${q}"} 0
# HELP apalis_tasks_succeeded_total Tasks that ended done, since the database was set up (kept across vacuums).
# TYPE apalis_tasks_succeeded_total counter
apalis_tasks_succeeded_total{queue="alpha"} 2
apalis_tasks_succeeded_total{queue="${q}"} 0
# HELP apalis_tasks_failed_total Attempts that failed and were scheduled for a retry (a failed last attempt counts as killed), since the database was set up.
# TYPE apalis_tasks_failed_total counter
apalis_tasks_failed_total{queue="alpha"} 1
apalis_tasks_failed_total{queue="${q}"} 0
# HELP apalis_tasks_killed_total Tasks that ended killed (out of attempts, killed by hand, undecodable), since the database was set up.
# TYPE apalis_tasks_killed_total counter
apalis_tasks_killed_total{queue="alpha"} 2
apalis_tasks_killed_total{queue="${q}"} 0
# HELP apalis_task_run_seconds Run time (claim to end) of the queue's newest done tasks (a sample, not a running count: use histogram_quantile() on it without rate()).
# TYPE apalis_task_run_seconds histogram
${buckets("apalis_task_run_seconds", "alpha", [0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2], 2)}
apalis_task_run_seconds_sum{queue="alpha"} 0.307
apalis_task_run_seconds_count{queue="alpha"} 2
${buckets("apalis_task_run_seconds", q, zeros, 0)}
apalis_task_run_seconds_sum{queue="${q}"} 0
apalis_task_run_seconds_count{queue="${q}"} 0
# HELP apalis_task_wait_seconds Wait time (due to claim) of the queue's newest done tasks (a sample, not a running count: use histogram_quantile() on it without rate()).
# TYPE apalis_task_wait_seconds histogram
${buckets("apalis_task_wait_seconds", "alpha", [0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2], 2)}
apalis_task_wait_seconds_sum{queue="alpha"} 2.04
apalis_task_wait_seconds_count{queue="alpha"} 2
${buckets("apalis_task_wait_seconds", q, zeros, 0)}
apalis_task_wait_seconds_sum{queue="${q}"} 0
apalis_task_wait_seconds_count{queue="${q}"} 0
# HELP apalis_workers_alive Workers of the queue that are alive (heartbeat recent, not stopped).
# TYPE apalis_workers_alive gauge
apalis_workers_alive{queue="alpha"} 0
apalis_workers_alive{queue="${q}"} 0
# HELP apalis_oldest_pending_task_age_seconds How long the queue's oldest due waiting task (pending, or failed awaiting its retry) has been due; 0 when none waits.
# TYPE apalis_oldest_pending_task_age_seconds gauge
apalis_oldest_pending_task_age_seconds{queue="alpha"} 5
apalis_oldest_pending_task_age_seconds{queue="${q}"} 0
# HELP apalis_queue_paused 1 when the queue is paused, else 0.
# TYPE apalis_queue_paused gauge
apalis_queue_paused{queue="alpha"} 0
apalis_queue_paused{queue="${q}"} 0
`;
  assert.equal(await renderMetrics(admin), expected);

  await admin.pauseQueue(WEIRD);
  clock.advance(1500);
  const after = samples(await renderMetrics(admin));
  assert.equal(after.get(`apalis_queue_paused{queue="${q}"}`), 1);
  assert.equal(after.get(`apalis_oldest_pending_task_age_seconds{queue="${q}"}`), 1.5);
  assert.equal(after.get(`apalis_oldest_pending_task_age_seconds{queue="alpha"}`), 6.5);
});

backendTest(
  "renderMetrics() counts the outcomes of worker processes, their workers alive, and keeps the counters through vacuum",
  async (db) => {
    const storage = db.storage<{ n: number }>("jobs");
    const ids = await storage.pushAll(Array.from({ length: 30 }, (_, n) => new Task({ n })));
    const args = ["--queue", "jobs", "--fail-first", "1", "--backoff-ms", "10", "--poll-ms", "20"];
    await using a = spawnChild(db.location, "metrics-a", args);
    await using b = spawnChild(db.location, "metrics-b", args);
    await Promise.all([a.ready, b.ready]);
    await storage.waitFor(ids, { timeoutMs: 60_000 });
    const running = samples(await renderMetrics(db.admin()));
    assert.equal(running.get('apalis_workers_alive{queue="jobs"}'), 2);
    assert.equal(running.get('apalis_tasks_started_total{queue="jobs"}'), 60, "two per task");
    assert.equal(running.get('apalis_tasks_succeeded_total{queue="jobs"}'), 30);
    assert.equal(running.get('apalis_tasks_failed_total{queue="jobs"}'), 30, "one per task");
    assert.equal(running.get('apalis_tasks{queue="jobs",state="done"}'), 30);
    assert.equal(running.get('apalis_task_run_seconds_count{queue="jobs"}'), 30);
    assert.equal(running.get('apalis_task_wait_seconds_bucket{queue="jobs",le="+Inf"}'), 30);
    await Promise.all([stopChild(a), stopChild(b)]);

    // Two minutes on: every task and every minute of outcome counts is old enough to go.
    const later = db.admin({ clock: { now: () => Date.now() + 120_000 } });
    assert.equal(await later.vacuum(), 30);
    assert.deepEqual(await later.throughput({ minutes: 24 * 60 }), [], "the minutes went too");
    const vacuumed = samples(await renderMetrics(db.admin()));
    assert.equal(vacuumed.get('apalis_workers_alive{queue="jobs"}'), 0);
    assert.equal(vacuumed.get('apalis_tasks{queue="jobs",state="done"}'), 0);
    assert.equal(vacuumed.get('apalis_task_run_seconds_count{queue="jobs"}'), 0);
    assert.equal(vacuumed.get('apalis_tasks_succeeded_total{queue="jobs"}'), 30, "not lowered");
    assert.equal(vacuumed.get('apalis_tasks_failed_total{queue="jobs"}'), 30, "not lowered");
    assert.equal(vacuumed.get('apalis_tasks_started_total{queue="jobs"}'), 60, "not lowered");

    const more = await storage.pushAll([100, 101, 102].map((n) => new Task({ n })));
    const worker = new WorkerBuilder("metrics-c").backend(storage).handleSignals(false)
      .build((n) => n);
    await worker.runUntil(storage.waitFor(more, { timeoutMs: 10_000 }));
    await later.kill(await storage.push({ n: 103 }));
    const counted = samples(await renderMetrics(db.admin()));
    assert.equal(counted.get('apalis_tasks_succeeded_total{queue="jobs"}'), 33);
    assert.equal(counted.get('apalis_tasks_started_total{queue="jobs"}'), 63, "not the kill");
    assert.equal(counted.get('apalis_tasks_killed_total{queue="jobs"}'), 1);
    assert.equal(counted.get('apalis_tasks_failed_total{queue="jobs"}'), 30);
    assert.equal(counted.get('apalis_task_run_seconds_count{queue="jobs"}'), 3);
  },
);
