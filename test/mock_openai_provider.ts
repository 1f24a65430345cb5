/**
 * A scripted OpenAI-compatible provider (OpenRouter's flavour) on 127.0.0.1 for tests: it
 * answers `POST <base>/chat/completions` per key (the Bearer token) with real success shapes,
 * whole or streamed (keep-alive comments, `data: [DONE]`), and with OpenRouter's real error
 * bodies from test/fixtures/openrouter-errors/, and records every request it receives. Used
 * beside test/mock_upstream.ts: Gemini's keys go to one, the fallback's keys to the other.
 */

import { BehaviorScript, Waiters } from "./mock_script.ts";
import { noKeepAlive } from "./no_keep_alive.ts";

const FIXTURES = new URL("./fixtures/openrouter-errors/", import.meta.url);

/** The path prefix of the base URL, as OpenRouter's `https://openrouter.ai/api/v1`. */
export const MOCK_PROVIDER_PREFIX = "/api/v1";

/** OpenRouter's real error bodies by short name; `headers` come with them. */
export const PROVIDER_FIXTURES = {
  /** 429, rate limited, with Retry-After. */
  rate_limited: { file: "429-rate-limit-exceeded-typed.json", headers: { "retry-after": "30" } },
  /** 429, the free tier's daily limit, with its reset time. */
  free_daily: {
    file: "429-free-models-per-day.json",
    headers: {
      "x-ratelimit-limit": "50",
      "x-ratelimit-remaining": "0",
      "x-ratelimit-reset": "1788825600000",
    },
  },
  /** 429 from the model's own provider behind OpenRouter (not the key's limit). */
  upstream_rate_limited: { file: "429-upstream-rate-limited-google-ai-studio.json", headers: {} },
  /** 402, out of credits. */
  credits: { file: "402-insufficient-credits.json", headers: {} },
  /** 401, unknown or revoked key. */
  unauthorized: { file: "401-user-not-found.json", headers: {} },
  /** 403, the key's own spending limit. */
  key_limit: { file: "403-key-limit-monthly.json", headers: {} },
  /** 404, the mapped model cannot serve the request. */
  no_endpoints: { file: "404-no-endpoints-tool-use.json", headers: {} },
  /** 503, no provider available. */
  unavailable: { file: "503-provider-no-available-workers.json", headers: {} },
} as const;

export type ProviderFixtureName = keyof typeof PROVIDER_FIXTURES;

/** A fixture's body and the status it came with (its own error.code). */
export function providerFixture(
  name: ProviderFixtureName,
): { status: number; body: string; headers: Record<string, string> } {
  const { file, headers } = PROVIDER_FIXTURES[name];
  const body = Deno.readTextFileSync(new URL(file, FIXTURES));
  return { status: JSON.parse(body).error.code as number, body, headers };
}

export interface MockToolCall {
  readonly name: string;
  /** JSON text; streamed in three fragments. */
  readonly arguments: string;
}

export type ProviderBehavior =
  /** An answer: `text` (word by word when streamed) and/or tool calls. */
  | {
    readonly type: "ok";
    readonly text?: string;
    readonly toolCalls?: readonly MockToolCall[];
    /** Time between streamed events (default 0). */
    readonly intervalMs?: number;
  }
  /** A real OpenRouter error body with its status and headers. */
  | { readonly type: "error"; readonly fixture: ProviderFixtureName }
  /** A 200 stream of `chunks` words, then OpenRouter's mid-stream error event (no [DONE]). */
  | { readonly type: "stream_error"; readonly chunks: number }
  /** Never answers (until the client gives up). */
  | { readonly type: "hang" }
  /** Any status, body and headers. */
  | {
    readonly type: "raw";
    readonly status: number;
    readonly body: string;
    readonly headers?: Record<string, string>;
  };

export interface RecordedProviderRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Headers;
  /** The Bearer token, if any. */
  readonly key: string | undefined;
  readonly body: string;
  /** The body parsed as JSON, when it is. */
  readonly json: Record<string, unknown> | undefined;
  readonly at: number;
}

export interface MockOpenAiProvider {
  /** The origin, `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** The base URL to configure: origin plus MOCK_PROVIDER_PREFIX. */
  readonly baseUrl: string;
  readonly requests: RecordedProviderRequest[];
  /** Streams whose reader went away before the end, and hung requests aborted. */
  readonly cancelled: number;
  /** Behaviours used one per request, in order; the last one repeats. */
  script(key: string, ...behaviors: ProviderBehavior[]): void;
  /** The behaviour for keys without a script. */
  setDefault(behavior: ProviderBehavior): void;
  requestsFor(key: string): RecordedProviderRequest[];
  /** Resolves when the next request arrives. */
  nextRequest(): Promise<RecordedProviderRequest>;
  /** Resolves when a stream is cancelled by its reader or a hung request is aborted. */
  nextCancel(): Promise<void>;
  close(): Promise<void>;
}

const encoder = new TextEncoder();
const CREATED = 1764000000;

export function startMockOpenAiProvider(): MockOpenAiProvider {
  const behaviors = new BehaviorScript<ProviderBehavior>({ type: "ok" });
  const requests: RecordedProviderRequest[] = [];
  const arrivals = new Waiters<RecordedProviderRequest>();
  const cancels = new Waiters();
  const controllers = new Set<AbortController>();
  let cancelled = 0;
  const noteCancel = () => {
    cancelled++;
    cancels.notify();
  };

  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    noKeepAlive(async (req) => {
      const url = new URL(req.url);
      const key = /^Bearer (.+)$/.exec(req.headers.get("authorization") ?? "")?.[1];
      const body = req.body ? await req.text() : "";
      let json: Record<string, unknown> | undefined;
      try {
        const parsed = JSON.parse(body);
        if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) json = parsed;
      } catch { /* not JSON */ }
      const recorded: RecordedProviderRequest = {
        method: req.method,
        path: url.pathname,
        headers: req.headers,
        key,
        body,
        json,
        at: Date.now(),
      };
      requests.push(recorded);
      arrivals.notify(recorded);

      if (url.pathname === `${MOCK_PROVIDER_PREFIX}/models` && req.method === "GET") {
        return jsonResponse(200, {
          data: [{ id: "google/gemini-2.5-pro" }, { id: "google/gemini-2.5-flash" }],
        });
      }
      if (url.pathname !== `${MOCK_PROVIDER_PREFIX}/chat/completions` || req.method !== "POST") {
        return jsonResponse(404, {
          error: { message: `mock: no route ${url.pathname}`, code: 404 },
        });
      }
      if (key === undefined) {
        // OpenRouter's answer to a request without a Bearer token (musistudio/claude-code-router#227).
        return jsonResponse(401, { error: { message: "No auth credentials found", code: 401 } });
      }
      return respond(behaviors.next(key), json ?? {}, req.signal);
    }),
  );

  function respond(
    behavior: ProviderBehavior,
    body: Record<string, unknown>,
    signal: AbortSignal,
  ): Response | Promise<Response> {
    const model = typeof body.model === "string" ? body.model : "google/gemini-2.5-flash";
    const stream = body.stream === true;
    switch (behavior.type) {
      case "ok": {
        const text = behavior.text ?? (behavior.toolCalls ? "" : "Hello from the fallback");
        const calls = behavior.toolCalls ?? [];
        return stream
          ? sseResponse(streamEvents(model, text, calls), behavior.intervalMs ?? 0)
          : jsonResponse(200, completion(model, text, calls));
      }
      case "error": {
        const { status, body: text, headers } = providerFixture(behavior.fixture);
        return new Response(text, {
          status,
          headers: { "content-type": "application/json", ...headers },
        });
      }
      case "stream_error": {
        const words = Array.from({ length: behavior.chunks }, (_, i) => `word${i}`).join(" ");
        const events = streamEvents(model, words, []).slice(0, 1 + behavior.chunks);
        events.push(
          Deno.readTextFileSync(new URL("stream-mid-error-rate-limit.sse", FIXTURES)),
        );
        return sseResponse(events, 0);
      }
      case "raw":
        return new Response(behavior.body, {
          status: behavior.status,
          headers: behavior.headers ?? { "content-type": "application/json" },
        });
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
    }
  }

  function sseResponse(events: string[], intervalMs: number): Response {
    const headers = { "content-type": "text/event-stream", "cache-control": "no-cache" };
    // All at once unless paced: on Deno 2.5 a server holding a connection that served a
    // ReadableStream body and then another request takes 90 s to shut down.
    if (intervalMs === 0) return new Response(events.join(""), { headers });
    let sent = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent > 0 && intervalMs > 0) {
          await new Promise((resolve) => timer = setTimeout(resolve, intervalMs));
        }
        if (sent < events.length) {
          controller.enqueue(encoder.encode(events[sent++]));
        } else {
          controller.close();
        }
      },
      cancel() {
        clearTimeout(timer);
        noteCancel();
      },
    });
    return new Response(body, { headers });
  }

  const addr = server.addr as Deno.NetAddr;
  const url = `http://127.0.0.1:${addr.port}`;
  return {
    url,
    baseUrl: `${url}${MOCK_PROVIDER_PREFIX}`,
    requests,
    get cancelled() {
      return cancelled;
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

function jsonResponse(status: number, value: unknown): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function usageFor(text: string, calls: readonly MockToolCall[]) {
  const completion = text.split(" ").filter(Boolean).length + calls.length;
  return { prompt_tokens: 8, completion_tokens: completion, total_tokens: 8 + completion };
}

function completion(model: string, text: string, calls: readonly MockToolCall[]) {
  return {
    id: "gen-mock-1",
    object: "chat.completion",
    created: CREATED,
    model,
    provider: "Mock",
    choices: [{
      index: 0,
      message: {
        role: "assistant",
        content: text === "" ? null : text,
        ...(calls.length > 0
          ? {
            tool_calls: calls.map((call, i) => ({
              id: `call_mock_${i}`,
              type: "function",
              function: { name: call.name, arguments: call.arguments },
            })),
          }
          : {}),
      },
      finish_reason: calls.length > 0 ? "tool_calls" : "stop",
    }],
    usage: usageFor(text, calls),
  };
}

/**
 * The SSE events of a streamed answer, as OpenRouter sends them: a keep-alive comment, a role
 * delta, one event per word, tool calls with their arguments in three fragments, the finish
 * reason, the usage in a last event without choices, and `[DONE]`.
 */
function streamEvents(model: string, text: string, calls: readonly MockToolCall[]): string[] {
  const event = (choice: Record<string, unknown> | undefined, extra = {}) =>
    `data: ${
      JSON.stringify({
        id: "gen-mock-1",
        object: "chat.completion.chunk",
        created: CREATED,
        model,
        provider: "Mock",
        choices: choice ? [{ index: 0, delta: {}, finish_reason: null, ...choice }] : [],
        ...extra,
      })
    }\n\n`;
  const events = [
    ": OPENROUTER PROCESSING\n\n" + event({ delta: { role: "assistant", content: "" } }),
  ];
  text.split(" ").filter(Boolean).forEach((word, i) => {
    events.push(event({ delta: { content: i === 0 ? word : ` ${word}` } }));
  });
  calls.forEach((call, index) => {
    const third = Math.ceil(call.arguments.length / 3);
    events.push(event({
      delta: {
        tool_calls: [{
          index,
          id: `call_mock_${index}`,
          type: "function",
          function: { name: call.name, arguments: call.arguments.slice(0, third) },
        }],
      },
    }));
    for (const piece of [call.arguments.slice(third, 2 * third), call.arguments.slice(2 * third)]) {
      events.push(event({ delta: { tool_calls: [{ index, function: { arguments: piece } }] } }));
    }
  });
  events.push(event({ delta: {}, finish_reason: calls.length > 0 ? "tool_calls" : "stop" }));
  events.push(event(undefined, { usage: usageFor(text, calls) }));
  events.push("data: [DONE]\n\n");
  return events;
}
