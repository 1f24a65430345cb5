import assert from "node:assert/strict";
import { Deadlines, GRANULARITY_MS } from "./deadlines.ts";

/** Resolves when `signal` aborts. */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve()));
}

Deno.test("a call that outlives the timeout is aborted with a TimeoutError, not before", async () => {
  const deadlines = new Deadlines(40);
  const started = performance.now();
  const deadline = deadlines.start();
  await aborted(deadline.signal);
  const waited = performance.now() - started;
  assert.ok(waited >= 39, `aborted after ${waited} ms`);
  assert.ok(waited < 40 + GRANULARITY_MS + 200, `aborted late: ${waited} ms`);
  assert.equal(deadline.timedOut, true);
  assert.equal((deadline.signal.reason as DOMException).name, "TimeoutError");
  deadline.release();
  assert.equal(deadlines.pending, 0);
});

Deno.test("released calls never time out, and no timer outlives the last one", async () => {
  const deadlines = new Deadlines(30);
  const released = Array.from({ length: 100 }, () => deadlines.start());
  const kept = deadlines.start();
  released.forEach((deadline) => deadline.release());
  assert.equal(deadlines.pending, 1);
  await aborted(kept.signal);
  assert.ok(released.every((deadline) => !deadline.signal.aborted && !deadline.timedOut));
  assert.equal(deadlines.pending, 0);
  assert.equal(deadlines.running, false);
  // Deno's test sanitizer fails this test if a timer were still scheduled here.
});

Deno.test("one timer serves many calls, and it stops once none is in flight", () => {
  const deadlines = new Deadlines(600_000);
  const first = deadlines.start();
  const more = Array.from({ length: 10 }, () => deadlines.start());
  assert.equal(deadlines.running, true);
  more.forEach((deadline) => deadline.release());
  assert.equal(deadlines.running, true, "a call is still in flight");
  first.release();
  assert.equal(deadlines.running, false, "an idle process is not kept alive");
  assert.equal(deadlines.pending, 0);
});

Deno.test("close() stops the timer at once", () => {
  const deadlines = new Deadlines(600_000);
  const deadline = deadlines.start();
  deadlines.close();
  assert.equal(deadlines.running, false);
  deadline.release();
});

Deno.test("the client leaving aborts the call with the client's reason, not as a timeout", () => {
  const deadlines = new Deadlines(60_000);
  const client = new AbortController();
  const deadline = deadlines.start(client.signal);
  client.abort(new DOMException("client left", "AbortError"));
  assert.equal(deadline.signal.aborted, true);
  assert.equal((deadline.signal.reason as DOMException).message, "client left");
  assert.equal(deadline.timedOut, false);
  deadline.release();
  assert.equal(deadlines.pending, 0);
  deadlines.close();
});

Deno.test("a client that already left gets an aborted signal at once", () => {
  const deadlines = new Deadlines(60_000);
  const client = new AbortController();
  client.abort();
  const deadline = deadlines.start(client.signal);
  assert.equal(deadline.signal.aborted, true);
  deadline.release();
  deadlines.close();
});

Deno.test("a released call no longer listens to its client", () => {
  const deadlines = new Deadlines(60_000);
  const client = new AbortController();
  const deadline = deadlines.start(client.signal);
  deadline.release();
  client.abort();
  assert.equal(deadline.signal.aborted, false);
  deadlines.close();
});

Deno.test("calls started at different times each get their own full timeout", async () => {
  let now = 0;
  const deadlines = new Deadlines(50, () => now);
  const first = deadlines.start();
  now = 30;
  const second = deadlines.start();
  // Real time moves too: wait for the first; the second must still be running at that point
  // by the injected clock (its deadline is 30 ms later).
  now = 60;
  await aborted(first.signal);
  assert.equal(second.signal.aborted, false);
  now = 90;
  await aborted(second.signal);
  assert.equal(second.timedOut, true);
  assert.equal(deadlines.pending, 0);
});
