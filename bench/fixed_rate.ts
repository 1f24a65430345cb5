/**
 * An open-loop load generator at a fixed, evenly spaced request rate, for latency at moderate
 * load. (wrk 4.1 in Debian has no -R; hey's -q paces each worker on its own ticker and the workers
 * start together, so requests leave in bursts of -c at once: that measures queueing.)
 *
 *   deno run -A bench/fixed_rate.ts URL RATE SECONDS     prints one JSON line of percentiles
 *
 * Request i is sent at start + i / RATE whether or not earlier ones have answered; its latency
 * runs from that send to the end of the response body. Sends that left more than 1 ms late
 * (the client itself was behind) are counted and reported.
 */

import { BODY, quantile, TOKEN } from "./lib.ts";

const [url, rateText, secondsText] = Deno.args;
const rate = Number(rateText);
const total = Math.round(rate * Number(secondsText));
const latencies: number[] = [];
let late = 0;
let failed = 0;
const pending: Promise<void>[] = [];

async function one(): Promise<void> {
  const t0 = performance.now();
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "x-goog-api-key": TOKEN, "content-type": "application/json" },
      body: BODY,
    });
    await response.arrayBuffer();
    if (response.status !== 200) failed++;
    latencies.push(performance.now() - t0);
  } catch {
    failed++;
  }
}

const start = performance.now() + 50;
for (let i = 0; i < total; i++) {
  const due = start + (i * 1000) / rate;
  const wait = due - performance.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  if (performance.now() - due > 1) late++;
  pending.push(one());
}
await Promise.all(pending);
console.log(JSON.stringify({
  requests: total,
  failed,
  late,
  p50Ms: quantile(latencies, 0.5),
  p90Ms: quantile(latencies, 0.9),
  p99Ms: quantile(latencies, 0.99),
  maxMs: Math.max(...latencies),
}));
