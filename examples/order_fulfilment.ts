// deno-lint-ignore-file no-console
/**
 * The seed's "Sequential Workflow (Order Fulfilment Pipeline)": charge the payment, split the
 * order into items, check stock concurrently, pause, dispatch the shipment and email the
 * customer. Each step is its own persisted task; a step's ack and the insert of the next step
 * commit in one transaction. The worker prints every event, stops on an error event (like the
 * seed), and stops when the run ends; then the run's status and result are printed.
 *
 * One difference with the seed: the last step returns a summary of the email (the seed returns
 * `()`), so that the run has a final result worth printing.
 *
 * Run with `deno run -A examples/order_fulfilment.ts` or `bun run examples/order_fulfilment.ts`.
 *
 * @module
 */
import { openDatabase, SqliteStorage, WorkerBuilder, type WorkerEvent, Workflow } from "../mod.ts";

interface Order {
  id: number;
  customerEmail: string;
  items: string[];
  totalCents: number;
}

interface ChargedOrder {
  orderId: number;
  customerEmail: string;
  transactionId: string;
  items: string[];
}

interface StockedItem {
  orderId: number;
  sku: string;
}

interface DispatchedOrder {
  orderId: number;
  customerEmail: string;
  trackingNumber: string;
  itemCount: number;
}

/** Simulates an inventory check: `undefined` for out-of-stock SKUs. */
async function checkStock(item: StockedItem): Promise<StockedItem | undefined> {
  const outOfStock = ["WIDGET-C", "WIDGET-D"];
  if (outOfStock.includes(item.sku)) {
    console.error(`[${item.orderId}] ${item.sku} is out of stock — skipping`);
    return undefined;
  }
  return item;
}

const workflow = new Workflow<Order>("order-fulfilment")
  // Step 1: Charge payment and return a record of the charged order.
  .andThen((order: Order): ChargedOrder => {
    console.log(
      `[${order.id}] Charging $${
        (order.totalCents / 100).toFixed(2)
      } for ${order.items.length} item(s)...`,
    );
    // Call your payment provider (e.g. Stripe) here.
    return {
      orderId: order.id,
      customerEmail: order.customerEmail,
      transactionId: `txn_${order.id}`,
      items: order.items,
    };
  })
  // Step 2: Split the order into the items to check.
  .andThen((charged): [ChargedOrder, StockedItem[]] => {
    const stocked = charged.items.map((sku) => ({ orderId: charged.orderId, sku }));
    return [{ ...charged, items: [] }, stocked];
  })
  // Step 3: Check stock for every item concurrently; fail if none is available.
  .andThen(async ([charged, items]): Promise<[ChargedOrder, StockedItem[]]> => {
    const available = (await Promise.all(items.map(checkStock)))
      .filter((item): item is StockedItem => item !== undefined);
    if (available.length === 0) {
      throw new Error("No items available to fulfil this order");
    }
    console.log(`[${charged.orderId}] ${available.length} item(s) confirmed in stock`);
    return [charged, available];
  })
  // Brief pause before handing off to the courier API (persisted: no worker slot is held).
  .delayFor(500)
  // Step 4: Dispatch the shipment and obtain a tracking number.
  .andThen(([charged, items]): DispatchedOrder => {
    const trackingNumber = `TRACK-${charged.orderId}`;
    console.log(
      `[${charged.orderId}] Dispatched ${items.length} item(s) — tracking: ${trackingNumber}`,
    );
    // Call your courier API (e.g. EasyPost, Shippo) here.
    return {
      orderId: charged.orderId,
      customerEmail: charged.customerEmail,
      trackingNumber,
      itemCount: items.length,
    };
  })
  // Step 5: Notify the customer by email.
  .andThen((dispatched) => {
    console.log(
      `[${dispatched.orderId}] Emailing ${dispatched.customerEmail} — your ${dispatched.itemCount} item(s) are on the way! (${dispatched.trackingNumber})`,
    );
    // Send a transactional email (e.g. Resend, SendGrid) here.
    return `emailed ${dispatched.customerEmail} (${dispatched.trackingNumber})`;
  });

/** One line per event (the seed prints them with `{:?}`). */
function describe(event: WorkerEvent): string {
  switch (event.type) {
    case "success":
      return `success: task ${event.task.taskId} attempt ${event.task.attempt} returned ${
        JSON.stringify(event.result)
      }`;
    case "error": {
      const message = event.error instanceof Error ? event.error.message : String(event.error);
      const where = event.task
        ? `task ${event.task.taskId} attempt ${event.task.attempt}`
        : "worker";
      return `error: ${where} ${event.status ?? "failed"}: ${message}`;
    }
    case "heartbeat":
      return `heartbeat (rescued ${event.rescued})`;
    case "exit":
      return event.error === undefined ? "exit" : `exit: ${event.error}`;
    default:
      return event.type;
  }
}

const db = openDatabase(":memory:");
SqliteStorage.setup(db);
const sqlite = SqliteStorage.newInQueue<Order>(db, "order-fulfilment");

const runId = await sqlite.pushStart({
  id: 1001,
  customerEmail: "alice@example.com",
  items: ["WIDGET-A", "WIDGET-B", "WIDGET-C"],
  totalCents: 7499,
});

const worker = new WorkerBuilder("fulfilment-worker")
  .backend(sqlite)
  .onEvent((ctx, event) => {
    console.log(`Event: ${describe(event)}`);
    if (event.type === "error") {
      ctx.stop();
    } else if (event.type === "success") {
      // A step's success event comes after its ack committed: the last one ends the run.
      void sqlite.workflowRun(runId).then((run) => {
        if (run?.status !== "running") ctx.stop();
      });
    }
  })
  .build(workflow);

await worker.run();

const run = await sqlite.workflowRun(runId);
console.log(`run ${runId}: ${run?.status}`);
console.log(`result: ${JSON.stringify(run?.result)}`);
db.close();
