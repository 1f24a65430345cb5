import assert from "node:assert/strict";
import { silentLogger } from "./log.ts";
import { MemoryStore } from "./state/memory.ts";
import { emptyCounts } from "./state/store.ts";
import { tokensFromTail, USAGE_RETENTION_DAYS, UsageRecorder } from "./usage.ts";

Deno.test("UsageRecorder.count() files counts under the Pacific day, across midnight both ways", async () => {
  // 2026-11-26 07:59:59 UTC is 23:59:59 PST on the 25th; a second later it is the 26th.
  let now = Date.UTC(2026, 10, 26, 7, 59, 59);
  const store = new MemoryStore();
  const usage = new UsageRecorder(store, { now: () => now, log: silentLogger, flushIntervalMs: 0 });
  usage.count("k", "m", { requests: 1 });
  now += 1000;
  usage.count("k", "m", { requests: 2 });
  now -= 1000; // a clock set back lands on the earlier day again
  usage.count("k", "m", { requests: 4 });
  await usage.flush();
  assert.equal((await store.usage("2026-11-25"))[0].requests, 5);
  assert.equal((await store.usage("2026-11-26"))[0].requests, 2);
});

const bytes = (text: string) => new TextEncoder().encode(text);

Deno.test(`UsageRecorder keeps ${USAGE_RETENTION_DAYS} days of rows: older ones go at the day's first flush`, async () => {
  const now = Date.UTC(2026, 10, 26, 18, 0, 0); // 10:00 on the 26th, Pacific
  const store = new MemoryStore();
  const old = { keyId: "k", model: "m", ...emptyCounts(), requests: 1 };
  await store.addUsage([
    { ...old, day: "2026-10-21" }, // 36 days before
    { ...old, day: "2026-10-22" }, // 35 days before: kept
  ]);
  const usage = new UsageRecorder(store, { now: () => now, log: silentLogger, flushIntervalMs: 0 });
  usage.count("k", "m", { requests: 1 });
  await usage.flush();
  assert.equal((await store.usage("2026-10-21")).length, 0);
  assert.equal((await store.usage("2026-10-22")).length, 1);
  assert.equal((await store.usage("2026-11-26"))[0].requests, 1);
});

Deno.test("tokensFromTail() reads a whole answer's usageMetadata", () => {
  const answer = JSON.stringify({
    candidates: [{ content: { parts: [{ text: "Hi" }] }, finishReason: "STOP" }],
    usageMetadata: {
      promptTokenCount: 12,
      candidatesTokenCount: 5,
      totalTokenCount: 40,
      promptTokensDetails: [{ modality: "TEXT", tokenCount: 12 }],
      thoughtsTokenCount: 23,
    },
    modelVersion: "gemini-2.5-flash",
  });
  // Output counts thoughts too: total minus prompt.
  assert.deepEqual(tokensFromTail(bytes(answer)), { promptTokens: 12, outputTokens: 28 });
});

Deno.test("tokensFromTail() takes the last (cumulative) usage of a stream", () => {
  const event = (prompt: number, total: number) =>
    `data: {"candidates":[{"content":{"parts":[{"text":"x"}]}}],"usageMetadata":` +
    `{"promptTokenCount":${prompt},"totalTokenCount":${total}}}\r\n\r\n`;
  const stream = event(7, 9) + event(7, 15) + event(7, 30);
  assert.deepEqual(tokensFromTail(bytes(stream)), { promptTokens: 7, outputTokens: 23 });
});

Deno.test("tokensFromTail() reads OpenAI-compatible usage", () => {
  const answer =
    '{"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":6,"total_tokens":10}}';
  assert.deepEqual(tokensFromTail(bytes(answer)), { promptTokens: 4, outputTokens: 6 });
});

Deno.test("tokensFromTail() ignores usage quoted inside the model's text", () => {
  const quoted = JSON.stringify({ usageMetadata: { promptTokenCount: 999 } });
  const answer = JSON.stringify({
    candidates: [{ content: { parts: [{ text: quoted }] } }],
    usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 2 },
  });
  assert.deepEqual(tokensFromTail(bytes(answer)), { promptTokens: 3, outputTokens: 2 });
  // With no usage of its own, quoted text counts for nothing.
  const only = JSON.stringify({ candidates: [{ content: { parts: [{ text: quoted }] } }] });
  assert.equal(tokensFromTail(bytes(only)), undefined);
});

Deno.test("tokensFromTail() finds nothing where there is no usage", () => {
  assert.equal(tokensFromTail(new Uint8Array()), undefined);
  assert.equal(tokensFromTail(bytes('{"candidates":[]}')), undefined);
  assert.equal(tokensFromTail(bytes('"usage')), undefined);
  assert.equal(tokensFromTail(bytes('"usageMetadata": {"cachedContentTokenCount": 1}')), undefined);
});
