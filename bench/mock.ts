/**
 * A fast Gemini stand-in for benchmarks: precomputed answers, no recording, no scripting, so the
 * upstream costs as little as possible and what is measured is the proxy in front of it.
 * (test/mock_upstream.ts is the scripted, recording mock for tests; this one is for speed.)
 *
 *   deno run -A bench/mock.ts          prints `{"port":N}` once listening on 127.0.0.1
 *
 * Paths:
 *   POST …:generateContent             reads and discards the body, answers a fixed JSON body
 *   POST …:streamGenerateContent       SSE: `?bytes=N` streams N bytes in 64 KiB events (default
 *                                      one small event); the first event goes out with the headers
 *   GET  /__bench/stats                counters (requests, body bytes, warm-up 429s)
 *   POST /__bench/warmup?on=1|0        warm-up: keys whose value contains "Cool" get a per-minute
 *                                      429 (the f1 fixture's shape, RetryInfo 3600 s), so a
 *                                      rotator learns that half its pool is cooling, with no
 *                                      special code in the rotator
 */

const encoder = new TextEncoder();

const ANSWER = encoder.encode(JSON.stringify({
  candidates: [{
    content: { parts: [{ text: "Hello from the benchmark mock." }], role: "model" },
    finishReason: "STOP",
    index: 0,
  }],
  usageMetadata: { promptTokenCount: 8, candidatesTokenCount: 7, totalTokenCount: 15 },
  modelVersion: "gemini-2.5-flash",
  responseId: "bench",
}));

/** Shape of test/fixtures/gemini-errors f1 (per-minute, free tier), with a one-hour delay. */
const COOL_429 = encoder.encode(JSON.stringify({
  error: {
    code: 429,
    message: "You exceeded your current quota, please check your plan and billing details.",
    status: "RESOURCE_EXHAUSTED",
    details: [
      {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        violations: [{
          quotaMetric: "generativelanguage.googleapis.com/generate_content_free_tier_requests",
          quotaId: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
          quotaDimensions: { location: "global", model: "gemini-2.5-flash" },
          quotaValue: "10",
        }],
      },
      { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "3600s" },
    ],
  },
}));

/** One SSE event of about 64 KiB, as a large streamed answer would carry. */
const EVENT_BYTES = 64 * 1024;
const BIG_EVENT = (() => {
  const head = 'data: {"candidates":[{"content":{"parts":[{"text":"';
  const tail = '"}],"role":"model"},"index":0}]}\r\n\r\n';
  return encoder.encode(head + "x".repeat(EVENT_BYTES - head.length - tail.length) + tail);
})();
const SMALL_EVENT = encoder.encode(
  'data: {"candidates":[{"content":{"parts":[{"text":"Hi"}],"role":"model"},' +
    '"finishReason":"STOP","index":0}]}\r\n\r\n',
);

/**
 * The fields Google's own answers carry (js-genai's recordings, ../shared/gemini-api-facts.md
 * §3.1; Deno adds Date). Their size matters: Deno writes an answer of up to 512 bytes in one
 * syscall and a larger one as headers, then body. Every real Gemini answer is larger; a mock
 * answer that was not would spare the bare proxy a write per request that no proxy of Gemini
 * is ever spared.
 */
const GOOGLE_HEADERS = {
  vary: "Origin, X-Origin, Referer",
  server: "scaffolding on HTTPServer2",
  "server-timing": "gfet4t7; dur=412",
  "x-xss-protection": "0",
  "x-frame-options": "SAMEORIGIN",
  "x-content-type-options": "nosniff",
};
const JSON_HEADERS = { "content-type": "application/json; charset=UTF-8", ...GOOGLE_HEADERS };
const SSE_HEADERS = { "content-type": "text/event-stream", ...GOOGLE_HEADERS };

const stats = {
  requests: 0,
  bodyBytes: 0,
  streamedBytes: 0,
  warmup: false,
  warmup429s: 0,
  /** Distinct "Cool" keys answered 429 during warm-up. */
  cooledKeys: 0,
  /** Requests that reached a "Cool" key while warm-up was off (a rotator that forgot a cooldown). */
  coolHitsAfterWarmup: 0,
};
const cooled = new Set<string>();

/** Reads a request body to the end, counting bytes, keeping none. */
async function drain(body: ReadableStream<Uint8Array> | null): Promise<void> {
  if (!body) return;
  for await (const chunk of body) stats.bodyBytes += chunk.byteLength;
}

function stream(total: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      // The first event goes out with the headers: time-to-first-byte measures the proxy only.
      const first = total > 0 ? BIG_EVENT : SMALL_EVENT;
      controller.enqueue(first);
      sent += first.byteLength;
      stats.streamedBytes += first.byteLength;
    },
    pull(controller) {
      if (sent >= total) {
        controller.close();
        return;
      }
      controller.enqueue(BIG_EVENT);
      sent += BIG_EVENT.byteLength;
      stats.streamedBytes += BIG_EVENT.byteLength;
    },
  }, { highWaterMark: 0 });
}

async function handle(request: Request): Promise<Response> {
  const url = new URL(request.url);
  const path = url.pathname;
  if (path === "/__bench/stats") return Response.json(stats);
  if (path === "/__bench/warmup") {
    stats.warmup = url.searchParams.get("on") === "1";
    return Response.json(stats);
  }
  stats.requests++;
  const key = request.headers.get("x-goog-api-key") ?? "";
  if (key.includes("Cool")) {
    if (stats.warmup) {
      await drain(request.body);
      stats.warmup429s++;
      if (!cooled.has(key)) {
        cooled.add(key);
        stats.cooledKeys++;
      }
      return new Response(COOL_429, { status: 429, headers: JSON_HEADERS });
    }
    stats.coolHitsAfterWarmup++;
  }
  await drain(request.body);
  if (path.endsWith(":streamGenerateContent")) {
    return new Response(stream(Number(url.searchParams.get("bytes") ?? 0)), {
      headers: SSE_HEADERS,
    });
  }
  return new Response(ANSWER, { headers: JSON_HEADERS });
}

if (import.meta.main) {
  Deno.serve({
    port: Number(Deno.env.get("PORT") ?? 0),
    hostname: "127.0.0.1",
    onListen({ port }) {
      console.log(JSON.stringify({ port }));
    },
  }, handle);
}
