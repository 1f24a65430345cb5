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

import { openLoop, quantile, timedGenerate } from "./lib.ts";

const [url, rateText, secondsText] = Deno.args;
const rate = Number(rateText);
const total = Math.round(rate * Number(secondsText));
const latencies: number[] = [];
let failed = 0;
const pending: Promise<void>[] = [];

async function one(): Promise<void> {
  const result = await timedGenerate(url);
  if (!result) {
    failed++;
    return;
  }
  if (!result.ok) failed++;
  latencies.push(result.ms);
}

const late = await openLoop(rate, total, () => pending.push(one()));
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
