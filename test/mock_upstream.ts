/**
 * A scripted Gemini API on 127.0.0.1 for tests: it answers per key (the x-goog-api-key header, or
 * the Bearer token on /openai/ paths) with real success shapes and the real error bodies of
 * test/fixtures/gemini-errors/, and records every request it receives.
 */

import { MockResources } from "./mock_resources.ts";
import { BehaviorScript, Waiters } from "./mock_script.ts";
import { noKeepAlive } from "./no_keep_alive.ts";
import { MockLive } from "./mock_live.ts";

const FIXTURES = new URL("./fixtures/gemini-errors/", import.meta.url);

/** Real error bodies by short name, with the HTTP status each came with. */
export const FIXTURE_FILES = {
  rpm: "f1-free-rpm-gemini-2-5-flash-mid-2025-shape.json",
  tpm: "f2-free-input-tpm-gemini-2-5-flash-real-paste-from-roo-code-202.json",
  rpm_pro: "f3-free-rpm-gemini-2-5-pro-late-2025-shape.json",
  limit0: "f4-limit-0-no-free-allowance-gemini-2-0-flash-three-violations-.json",
  rpd: "f5-free-daily-quota-short-retrydelay.json",
  rpd_openai: "f6-paid-tier-daily-quota-openai-compat-endpoint-array-wrapped-g.json",
  no_details: "f7-429-with-no-details-at-all.json",
  spend_cap: "f8-monthly-spend-cap-project-level-openai-compat.json",
  prepay: "f9-402-prepay-credits-depleted.json",
  invalid: "f10-400-api-key-invalid.json",
  expired: "f11-400-expired-key.json",
  unsupported: "f12b-401-access-token-type-unsupported-assembled.json",
  service_disabled: "f13-403-service-disabled.json",
  leaked: "f14-403-leaked-key.json",
  suspended: "f15-403-suspended-consumer-banned-key-or-project.json",
  api_blocked: "f16-403-key-restricted-to-other-apis.json",
  referrer: "f17-403-referrer-restricted-key.json",
  location: "f18-400-failed-precondition-caller-location.json",
  overloaded: "f19-503-overloaded.json",
  internal: "f20b-500-internal.json",
  not_found: "f21-404-model-not-found-stream.json",
} as const;

export type FixtureName = keyof typeof FIXTURE_FILES;

/** Reads a fixture body and the status it carries (its own error.code). */
export function fixture(name: FixtureName): { status: number; body: string } {
  const body = Deno.readTextFileSync(new URL(FIXTURE_FILES[name], FIXTURES));
  const parsed = JSON.parse(body);
  const status = (Array.isArray(parsed) ? parsed[0] : parsed).error.code as number;
  return { status, body };
}

/**
 * Google's real per-minute 429 body (fixture `rpm`) with a chosen RetryInfo delay, in seconds,
 * and, when given, a chosen stated limit (`quotaValue`).
 */
export function rpmBody(seconds: number, limit?: number): string {
  const body = JSON.parse(fixture("rpm").body);
  if (limit !== undefined) body.error.details[0].violations[0].quotaValue = String(limit);
  body.error.details[2].retryDelay = `${seconds}s`;
  return JSON.stringify(body);
}

export type Behavior =
  /** A normal answer for the path (generate, stream, OpenAI chat, models, embeddings...). */
  | { readonly type: "ok"; readonly text?: string }
  /** A real error body. */
  | { readonly type: "error"; readonly fixture: FixtureName }
  /** A stream of `chunks` events, `intervalMs` apart. */
  | { readonly type: "slow_stream"; readonly chunks: number; readonly intervalMs: number }
  /** Headers and `chunks` events, then silence with the connection open. */
  | { readonly type: "stall"; readonly chunks: number }
  /** Headers and `chunks` events, then the connection is cut. */
  | { readonly type: "reset"; readonly chunks: number }
  /** An HTML page from a load balancer. */
  | { readonly type: "html"; readonly status: number }
  /** Never answers (until the client gives up). */
  | { readonly type: "hang" }
  /**
   * Google's quota enforcement in miniature: per project, at most `limit` requests in each fixed
   * window of `windowMs` (aligned to the epoch), answered past that with the real per-minute 429
   * body (quotaValue and a RetryInfo up to the window's end).
   */
  | { readonly type: "limited"; readonly limit: number; readonly windowMs: number }
  /**
   * An SSE stream of `chunks` events of `chunkBytes` each, produced only as fast as it is read
   * (the mock's `streamedBytes` says how much was produced: backpressure tests).
   */
  | { readonly type: "big_stream"; readonly chunkBytes: number; readonly chunks: number }
  /** Any status and body. */
  | {
    readonly type: "raw";
    readonly status: number;
    readonly body: string;
    readonly headers?: Record<string, string>;
    /** Send the body gzip-compressed with content-encoding and the compressed length. */
    readonly gzip?: boolean;
  };

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly search: string;
  readonly headers: Headers;
  /** The credential the request carried (header or Bearer), if any. */
  readonly key: string | undefined;
  readonly body: string;
  /** The body exactly as received (non-UTF-8 bytes included). */
  readonly bytes: Uint8Array;
  readonly at: number;
}

export interface MockUpstream {
  readonly url: string;
  /** The Live API endpoint: upgrades it accepted or refused, and frames it saw. */
  readonly live: MockLive;
  /** Files, caches, batches and upload sessions, owned per project. */
  readonly resources: MockResources;
  /** Says which project a key belongs to (default: each key is its own project). */
  setProject(key: string, project: string): void;
  readonly requests: RecordedRequest[];
  /** Requests a "limited" behaviour refused with 429, and when. */
  readonly refused: { at: number; key: string | undefined }[];
  /** Streams whose reader went away before the end (client cancelled). */
  readonly cancelledStreams: number;
  /** Bytes produced so far by `big_stream` answers. */
  readonly streamedBytes: number;
  /** Behaviours used one per request, in order; the last one repeats. */
  script(key: string, ...behaviors: Behavior[]): void;
  /** The behaviour for keys without a script. */
  setDefault(behavior: Behavior): void;
  /** Requests carrying `key`. */
  requestsFor(key: string): RecordedRequest[];
  /** Resolves when the next request arrives. */
  nextRequest(): Promise<RecordedRequest>;
  /** Resolves when a streamed answer is cancelled by its reader, or a pending request aborted. */
  nextCancel(): Promise<void>;
  close(): Promise<void>;
}

const encoder = new TextEncoder();

export interface MockOptions {
  /** The mock's clock (share the rotator's FakeClock so quota windows agree). */
  readonly now?: () => number;
}

export function startMockUpstream(options: MockOptions = {}): MockUpstream {
  const now = options.now ?? Date.now;
  /** Requests counted per project and window by "limited" behaviours. */
  const windowCounts = new Map<string, number>();
  const refused: { at: number; key: string | undefined }[] = [];
  const behaviors = new BehaviorScript<Behavior>({ type: "ok" });
  const requests: RecordedRequest[] = [];
  const arrivals = new Waiters<RecordedRequest>();
  let cancelledStreams = 0;
  let streamedBytes = 0;
  const controllers = new Set<AbortController>();
  const cancels = new Waiters();
  const noteCancel = () => {
    cancelledStreams++;
    cancels.notify();
  };

  const projects = new Map<string, string>();
  let origin = "";
  const live = new MockLive((key) => behaviors.next(key));
  const resources = new MockResources(() => origin);
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    noKeepAlive(async (req) => {
      const url = new URL(req.url);
      if (url.pathname.startsWith("/ws/")) return live.accept(req, url);
      const key = req.headers.get("x-goog-api-key") ??
        /^Bearer (.+)$/.exec(req.headers.get("authorization") ?? "")?.[1] ?? undefined;
      const bytes = req.body ? new Uint8Array(await req.arrayBuffer()) : new Uint8Array();
      const recorded: RecordedRequest = {
        method: req.method,
        path: url.pathname,
        search: url.search,
        headers: req.headers,
        key,
        body: new TextDecoder().decode(bytes),
        bytes,
        at: Date.now(),
      };
      requests.push(recorded);
      arrivals.notify(recorded);
      return respond(behaviors.next(key), recorded, url, req.signal);
    }),
  );

  function respond(
    behavior: Behavior,
    req: RecordedRequest,
    url: URL,
    signal: AbortSignal,
  ): Response | Promise<Response> {
    const sse = url.searchParams.get("alt") === "sse";
    const openaiStream = url.pathname.includes("/openai/") && /"stream"\s*:\s*true/.test(req.body);
    const streaming = url.pathname.endsWith(":streamGenerateContent") || openaiStream;
    switch (behavior.type) {
      case "limited": {
        const project = req.key === undefined ? "" : projects.get(req.key) ?? req.key;
        const t = now();
        const windowIndex = Math.floor(t / behavior.windowMs);
        const id = `${project}\u0000${windowIndex}`;
        const used = windowCounts.get(id) ?? 0;
        if (used >= behavior.limit) {
          refused.push({ at: t, key: req.key });
          const delay = ((windowIndex + 1) * behavior.windowMs - t) / 1000;
          return new Response(rpmBody(delay, behavior.limit), {
            status: 429,
            headers: { "content-type": "application/json" },
          });
        }
        windowCounts.set(id, used + 1);
        return okAnswer(url, req, "Hello from the mock");
      }
      case "ok": {
        const project = req.key === undefined ? undefined : projects.get(req.key) ?? req.key;
        const answer = resources.handle(req.method, url, req.headers, req.bytes, project);
        if (answer) return answer;
        if (/:(generateContent|streamGenerateContent|countTokens)$/.test(url.pathname)) {
          const denied = resources.checkAccess(req.body, project);
          if (denied) return denied;
        }
        if (url.pathname.endsWith(":batchGenerateContent") && project) {
          return resources.createBatch(project, url.pathname.split("/").pop()!.split(":")[0]);
        }
        return okAnswer(url, req, behavior.text ?? "Hello from the mock");
      }
      case "error": {
        const { status, body } = fixture(behavior.fixture);
        // Before any data, Gemini's SSE endpoint sends errors with the stream's content type.
        const type = sse ? "text/event-stream" : "application/json; charset=UTF-8";
        return new Response(body, { status, headers: { "content-type": type } });
      }
      case "html":
        return new Response("<html><body><h1>502 Bad Gateway</h1></body></html>", {
          status: behavior.status,
          headers: { "content-type": "text/html" },
        });
      case "raw": {
        const headers = new Headers(behavior.headers ?? { "content-type": "application/json" });
        if (!behavior.gzip) {
          return new Response(behavior.body, { status: behavior.status, headers });
        }
        const compressed = new Response(
          new Blob([behavior.body]).stream().pipeThrough(new CompressionStream("gzip")),
        ).arrayBuffer();
        return compressed.then((bytes) => {
          headers.set("content-encoding", "gzip");
          headers.set("content-length", String(bytes.byteLength));
          return new Response(bytes, { status: behavior.status, headers });
        });
      }
      case "hang": {
        const controller = new AbortController();
        controllers.add(controller);
        signal.addEventListener("abort", () => {
          noteCancel();
          controller.abort();
        });
        return new Promise<Response>((resolve) =>
          controller.signal.addEventListener("abort", () => resolve(new Response("closed")))
        );
      }
      case "big_stream": {
        const event = encoder.encode(
          `data: ${
            JSON.stringify({
              candidates: [{ content: { parts: [{ text: "x".repeat(behavior.chunkBytes) }] } }],
            })
          }\r\n\r\n`,
        );
        let sent = 0;
        const body = new ReadableStream<Uint8Array>({
          pull(c) {
            if (sent++ >= behavior.chunks) return c.close();
            streamedBytes += event.byteLength;
            c.enqueue(event);
          },
          cancel() {
            noteCancel();
          },
        }, { highWaterMark: 0 });
        return new Response(body, { headers: { "content-type": "text/event-stream" } });
      }
      case "slow_stream":
      case "stall":
      case "reset": {
        const chunks = behavior.chunks;
        const interval = behavior.type === "slow_stream" ? behavior.intervalMs : 0;
        let sent = 0;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const controller = new AbortController();
        controllers.add(controller);
        const body = new ReadableStream<Uint8Array>({
          // OpenAI-compatible streams are SSE; native ones SSE with alt=sse, else a JSON array.
          async pull(c) {
            if (sent > 0 && interval > 0) {
              await new Promise((r) => timer = setTimeout(r, interval));
            }
            if (sent < chunks) {
              c.enqueue(
                encoder.encode(
                  streamEvent(sse || openaiStream || !streaming, sent, chunks, `chunk ${sent}`),
                ),
              );
              sent++;
              return;
            }
            if (behavior.type === "slow_stream") {
              if (!sse && !openaiStream && streaming) c.enqueue(encoder.encode("]"));
              c.close();
            } else if (behavior.type === "reset") {
              // Let the server send the headers and chunks first: Deno 2.5's Deno.serve drops a
              // connection whose body errors before its first write, so the client would see
              // no response at all instead of a stream cut mid-way (2.9 writes them first).
              await new Promise((r) => timer = setTimeout(r, 0));
              c.error(new Error("connection reset by mock"));
            } else {
              await new Promise((r) => controller.signal.addEventListener("abort", r));
            }
          },
          cancel() {
            clearTimeout(timer);
            controller.abort();
            noteCancel();
          },
        });
        return new Response(body, {
          headers: {
            "content-type": sse || openaiStream ? "text/event-stream" : "application/json",
          },
        });
      }
    }
  }

  const addr = server.addr as Deno.NetAddr;
  origin = `http://127.0.0.1:${addr.port}`;
  return {
    url: `http://127.0.0.1:${addr.port}`,
    refused,
    live,
    resources,
    setProject(key, project) {
      projects.set(key, project);
    },
    requests,
    get cancelledStreams() {
      return cancelledStreams;
    },
    get streamedBytes() {
      return streamedBytes;
    },
    script: (key, ...list) => behaviors.script(key, ...list),
    setDefault: (behavior) => behaviors.setDefault(behavior),
    requestsFor: (key) => requests.filter((r) => r.key === key),
    nextRequest: () => arrivals.next(),
    nextCancel: () => cancels.next(),
    async close() {
      for (const controller of controllers) controller.abort();
      await server.shutdown();
    },
  };
}

/** One event of a Gemini stream: SSE framing, or an element of the streamed JSON array. */
function streamEvent(sse: boolean, index: number, total: number, text: string): string {
  const last = index === total - 1;
  const chunk = {
    candidates: [{
      content: { parts: [{ text }], role: "model" },
      ...(last ? { finishReason: "STOP" } : {}),
      index: 0,
    }],
    usageMetadata: {
      promptTokenCount: 8,
      candidatesTokenCount: index + 1,
      totalTokenCount: 9 + index,
    },
    modelVersion: "gemini-2.5-flash",
  };
  if (sse) return `data: ${JSON.stringify(chunk)}\r\n\r\n`;
  return `${index === 0 ? "[" : ",\r\n"}${JSON.stringify(chunk)}`;
}

function okAnswer(url: URL, req: RecordedRequest, text: string): Response {
  const path = url.pathname;
  const json = (value: unknown) =>
    new Response(JSON.stringify(value, null, 2), {
      headers: { "content-type": "application/json; charset=UTF-8" },
    });
  if (path.includes("/openai/")) return openAiAnswer(path, req, text);
  if (path.endsWith(":streamGenerateContent")) {
    const sse = url.searchParams.get("alt") === "sse";
    const words = text.split(" ");
    const body = words.map((word, i) =>
      streamEvent(sse, i, words.length, i === 0 ? word : ` ${word}`)
    ).join("") + (sse ? "" : "]");
    return new Response(body, {
      headers: { "content-type": sse ? "text/event-stream" : "application/json; charset=UTF-8" },
    });
  }
  if (path.endsWith(":generateContent")) {
    return json({
      candidates: [{
        content: { parts: [{ text }], role: "model" },
        finishReason: "STOP",
        index: 0,
      }],
      usageMetadata: { promptTokenCount: 8, candidatesTokenCount: 4, totalTokenCount: 12 },
      modelVersion: "gemini-2.5-flash",
      responseId: "mock-response",
    });
  }
  if (path.endsWith(":countTokens")) return json({ totalTokens: 8 });
  if (path.endsWith(":embedContent")) return json({ embedding: { values: [0.1, 0.2, 0.3] } });
  if (path.endsWith(":batchEmbedContents")) {
    return json({ embeddings: [{ values: [0.1, 0.2, 0.3] }] });
  }
  if (/\/models$/.test(path)) {
    return json({
      models: [{
        name: "models/gemini-2.5-flash",
        displayName: "Gemini 2.5 Flash",
        supportedGenerationMethods: ["generateContent", "streamGenerateContent", "countTokens"],
      }],
    });
  }
  return new Response(
    JSON.stringify({
      error: { code: 404, message: `mock: no route ${path}`, status: "NOT_FOUND" },
    }),
    { status: 404, headers: { "content-type": "application/json" } },
  );
}

function openAiAnswer(path: string, req: RecordedRequest, text: string): Response {
  const json = (value: unknown) =>
    new Response(JSON.stringify(value), { headers: { "content-type": "application/json" } });
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(req.body || "{}");
  } catch { /* not JSON */ }
  const model = typeof body.model === "string" ? body.model : "gemini-2.5-flash";
  if (path.endsWith("/chat/completions")) {
    if (body.stream === true) {
      const words = text.split(" ");
      const events = words.map((word, i) =>
        `data: ${
          JSON.stringify({
            id: "chatcmpl-mock",
            object: "chat.completion.chunk",
            created: 1764000000,
            model,
            choices: [{
              index: 0,
              delta: { role: "assistant", content: i === 0 ? word : ` ${word}` },
              finish_reason: i === words.length - 1 ? "stop" : null,
            }],
            ...(i === words.length - 1
              ? {
                usage: {
                  prompt_tokens: 8,
                  completion_tokens: words.length,
                  total_tokens: 8 + words.length,
                },
              }
              : {}),
          })
        }\n\n`
      );
      return new Response(events.join("") + "data: [DONE]\n\n", {
        headers: { "content-type": "text/event-stream" },
      });
    }
    return json({
      id: "chatcmpl-mock",
      object: "chat.completion",
      created: 1764000000,
      model,
      choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }],
      usage: { prompt_tokens: 8, completion_tokens: 4, total_tokens: 12 },
    });
  }
  if (path.endsWith("/embeddings")) {
    return json({
      object: "list",
      data: [{ object: "embedding", index: 0, embedding: [0.1, 0.2, 0.3] }],
      model,
      usage: { prompt_tokens: 3, total_tokens: 3 },
    });
  }
  if (path.endsWith("/images/generations")) {
    // Google's OpenAI-compatible image generation (Imagen): base64 images.
    return json({ created: 1764000000, data: [{ b64_json: btoa("mock image bytes") }] });
  }
  if (path.endsWith("/models")) {
    return json({
      object: "list",
      data: [{ id: "models/gemini-2.5-flash", object: "model", created: 0, owned_by: "google" }],
    });
  }
  return new Response(
    JSON.stringify([{
      error: { code: 404, message: `mock: no route ${path}`, status: "NOT_FOUND" },
    }]),
    { status: 404, headers: { "content-type": "application/json" } },
  );
}
