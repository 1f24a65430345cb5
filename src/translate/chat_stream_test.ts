import assert from "node:assert/strict";
import {
  type ChatStreamResult,
  chatStreamToGemini,
  ChatStreamTranslator,
  type GeminiFraming,
} from "./chat_stream.ts";

const MODEL = "gemini-2.5-flash";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One chat.completion.chunk event as OpenAI/OpenRouter frame it. */
function event(choice: Record<string, unknown> | undefined, extra: Record<string, unknown> = {}) {
  return `data: ${
    JSON.stringify({
      id: "gen-1",
      object: "chat.completion.chunk",
      created: 1764000000,
      model: "google/gemini-2.5-flash",
      choices: choice ? [{ index: 0, delta: {}, finish_reason: null, ...choice }] : [],
      ...extra,
    })
  }\n\n`;
}
const DONE = "data: [DONE]\n\n";
const PROCESSING = ": OPENROUTER PROCESSING\n\n";
const usage = { prompt_tokens: 8, completion_tokens: 3, total_tokens: 11 };
const usageMetadata = { promptTokenCount: 8, candidatesTokenCount: 3, totalTokenCount: 11 };

function run(chunks: readonly string[], framing: GeminiFraming = "sse") {
  let result: ChatStreamResult | undefined;
  const translator = new ChatStreamTranslator({
    model: MODEL,
    framing,
    provider: "openrouter",
    onEnd: (r) => result = r,
  });
  const outputs = chunks.map((c) => decoder.decode(translator.push(encoder.encode(c))));
  outputs.push(decoder.decode(translator.end()));
  return { text: outputs.join(""), outputs, result: result! };
}

/** The Gemini chunks of an SSE output, checking its framing. */
function sseChunks(text: string): Record<string, unknown>[] {
  assert.ok(text === "" || text.endsWith("\r\n\r\n"), "every event ends with CRLF CRLF");
  return text.split("\r\n\r\n").filter((e) => e !== "").map((e) => {
    assert.ok(e.startsWith("data: "), `an SSE data event: ${e}`);
    return JSON.parse(e.slice("data: ".length));
  });
}

const textChunk = (text: string) => ({
  candidates: [{ content: { parts: [{ text }], role: "model" }, index: 0 }],
  modelVersion: MODEL,
  responseId: "gen-1",
});
const finalChunk = (parts: unknown[], finishReason: string, withUsage = true) => ({
  candidates: [{ content: { parts, role: "model" }, finishReason, index: 0 }],
  ...(withUsage ? { usageMetadata } : {}),
  modelVersion: MODEL,
  responseId: "gen-1",
});

interface Case {
  readonly name: string;
  readonly input: readonly string[];
  readonly want: readonly unknown[];
  readonly end?: ChatStreamResult["end"];
}

const cases: Case[] = [
  {
    name: "text deltas, a usage chunk with no choices, [DONE] and keep-alive comments",
    input: [
      PROCESSING,
      event({ delta: { role: "assistant", content: "" } }),
      event({ delta: { content: "Hello" } }),
      PROCESSING,
      event({ delta: { content: " world" } }),
      event({ delta: {}, finish_reason: "stop" }),
      event(undefined, { usage }),
      DONE,
    ],
    want: [textChunk("Hello"), textChunk(" world"), finalChunk([{ text: "" }], "STOP")],
  },
  {
    name: "usage on the finishing event itself (OpenRouter's last message)",
    input: [
      event({ delta: { content: "Hi" } }),
      event({ delta: { content: "!" }, finish_reason: "stop" }, { usage }),
      DONE,
    ],
    want: [textChunk("Hi"), textChunk("!"), finalChunk([{ text: "" }], "STOP")],
  },
  {
    name: "tool-call arguments split over deltas go out as one whole functionCall",
    input: [
      event({
        delta: {
          role: "assistant",
          tool_calls: [{
            index: 0,
            id: "call_1",
            type: "function",
            function: { name: "get_weather", arguments: "" },
          }],
        },
      }),
      event({ delta: { tool_calls: [{ index: 0, function: { arguments: '{"ci' } }] } }),
      event({ delta: { tool_calls: [{ index: 0, function: { arguments: 'ty":"Pa' } }] } }),
      event({ delta: { tool_calls: [{ index: 0, function: { arguments: 'ris"}' } }] } }),
      event({
        delta: {
          tool_calls: [{
            index: 1,
            id: "call_2",
            function: { name: "now", arguments: "{}" },
          }],
        },
      }),
      event({ delta: {}, finish_reason: "tool_calls" }),
      event(undefined, { usage }),
      DONE,
    ],
    want: [
      finalChunk([
        { functionCall: { name: "get_weather", args: { city: "Paris" } } },
        { functionCall: { name: "now", args: {} } },
      ], "STOP"),
    ],
  },
  {
    name: "tool calls without index (Gemini's compat endpoint) finished with stop",
    input: [
      event({
        delta: {
          tool_calls: [{
            id: "a",
            type: "function",
            function: { name: "f", arguments: '{"x":1}' },
          }],
        },
      }),
      event({
        delta: {
          tool_calls: [{ id: "b", type: "function", function: { name: "g", arguments: '{"y":' } }],
        },
      }),
      event({ delta: { tool_calls: [{ function: { arguments: "2}" } }] } }),
      event({ delta: {}, finish_reason: "stop" }, { usage }),
      DONE,
    ],
    want: [
      finalChunk([
        { functionCall: { name: "f", args: { x: 1 } } },
        { functionCall: { name: "g", args: { y: 2 } } },
      ], "STOP"),
    ],
  },
  {
    name: "a second call reusing index 0 with a new id is kept apart",
    input: [
      event({
        delta: { tool_calls: [{ index: 0, id: "a", function: { name: "f", arguments: "{}" } }] },
      }),
      event({
        delta: { tool_calls: [{ index: 0, id: "b", function: { name: "g", arguments: "{" } }] },
      }),
      event({ delta: { tool_calls: [{ index: 0, function: { arguments: "}" } }] } }),
      event({ delta: {}, finish_reason: "tool_calls" }),
      DONE,
    ],
    want: [
      finalChunk(
        [
          { functionCall: { name: "f", args: {} } },
          { functionCall: { name: "g", args: {} } },
        ],
        "STOP",
        false,
      ),
    ],
  },
  {
    name: "calls still open at [DONE] with no finish reason go out, finished",
    input: [
      event({ delta: { content: "Calling." } }),
      event({
        delta: { tool_calls: [{ index: 0, id: "a", function: { name: "f", arguments: "{}" } }] },
      }),
      DONE,
    ],
    want: [
      textChunk("Calling."),
      finalChunk([{ functionCall: { name: "f", args: {} } }], "STOP", false),
    ],
  },
  {
    name: "unparsable arguments end the turn as MALFORMED_FUNCTION_CALL",
    input: [
      event({
        delta: { tool_calls: [{ index: 0, id: "a", function: { name: "f", arguments: "{oops" } }] },
      }),
      event({ delta: {}, finish_reason: "tool_calls" }, { usage }),
      DONE,
    ],
    want: [finalChunk([{ text: "" }], "MALFORMED_FUNCTION_CALL")],
  },
  {
    name: "length finishes with MAX_TOKENS",
    input: [event({ delta: { content: "Once" }, finish_reason: "length" }, { usage }), DONE],
    want: [textChunk("Once"), finalChunk([{ text: "" }], "MAX_TOKENS")],
  },
  {
    name: "a mid-stream error event becomes Gemini's final error event",
    input: [
      event({ delta: { content: "Partial" } }),
      `data: ${
        JSON.stringify({
          id: "gen-1",
          object: "chat.completion.chunk",
          provider: "OpenAI",
          error: {
            code: 429,
            message: "Rate limit exceeded",
            metadata: { error_type: "rate_limit_exceeded" },
          },
          choices: [{ index: 0, delta: { content: "" }, finish_reason: "error" }],
        })
      }\n\n`,
      event({ delta: { content: "ignored" } }),
    ],
    want: [textChunk("Partial"), {
      error: {
        code: 429,
        message:
          "The fallback provider openrouter failed mid-answer: Rate limit exceeded. The answer is incomplete; retry the request.",
        status: "RESOURCE_EXHAUSTED",
        details: [{
          "@type": "type.googleapis.com/google.rpc.ErrorInfo",
          reason: "FALLBACK_PROVIDER_ERROR",
          domain: "gemini-key-rotator",
        }],
      },
    }],
    end: "provider_error",
  },
  {
    name: "finish_reason error with a string code (older OpenRouter example) is an INTERNAL error",
    input: [
      event({ delta: { content: "Par" } }),
      `data: {"id":"gen-1","object":"chat.completion.chunk","error":{"code":"server_error","message":"Provider disconnected unexpectedly"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}\n\n`,
    ],
    want: [textChunk("Par"), {
      error: {
        code: 500,
        message:
          "The fallback provider openrouter failed mid-answer: Provider disconnected unexpectedly. The answer is incomplete; retry the request.",
        status: "INTERNAL",
        details: [{
          "@type": "type.googleapis.com/google.rpc.ErrorInfo",
          reason: "FALLBACK_PROVIDER_ERROR",
          domain: "gemini-key-rotator",
        }],
      },
    }],
    end: "provider_error",
  },
  {
    name: "a stream cut before any finish reason or [DONE] ends with an error, not a short answer",
    input: [event({ delta: { content: "Half an ans" } })],
    want: [textChunk("Half an ans"), {
      error: {
        code: 503,
        message:
          "The fallback provider openrouter ended its stream before the answer was complete. Retry the request.",
        status: "UNAVAILABLE",
        details: [{
          "@type": "type.googleapis.com/google.rpc.ErrorInfo",
          reason: "FALLBACK_PROVIDER_ERROR",
          domain: "gemini-key-rotator",
        }],
      },
    }],
    end: "truncated",
  },
  {
    name: "a finish reason without a later [DONE] still completes",
    input: [event({ delta: { content: "Done" }, finish_reason: "stop" })],
    want: [textChunk("Done"), finalChunk([{ text: "" }], "STOP", false)],
  },
  {
    name: "two choices (candidateCount 2) keep their candidate index",
    input: [
      `data: {"id":"gen-1","choices":[{"index":0,"delta":{"content":"A"}},{"index":1,"delta":{"content":"B"}}]}\n\n`,
      `data: {"id":"gen-1","choices":[{"index":1,"delta":{},"finish_reason":"stop"},{"index":0,"delta":{},"finish_reason":"length"}]}\n\n`,
      DONE,
    ],
    want: [
      {
        candidates: [
          { content: { parts: [{ text: "A" }], role: "model" }, index: 0 },
          { content: { parts: [{ text: "B" }], role: "model" }, index: 1 },
        ],
        modelVersion: MODEL,
        responseId: "gen-1",
      },
      {
        candidates: [
          {
            content: { parts: [{ text: "" }], role: "model" },
            finishReason: "MAX_TOKENS",
            index: 0,
          },
          { content: { parts: [{ text: "" }], role: "model" }, finishReason: "STOP", index: 1 },
        ],
        modelVersion: MODEL,
        responseId: "gen-1",
      },
    ],
  },
];

for (const { name, input, want, end } of cases) {
  Deno.test(`ChatStreamTranslator (alt=sse): ${name}`, () => {
    const { text, result } = run(input, "sse");
    assert.deepEqual(sseChunks(text), want);
    assert.equal(result.end, end ?? "complete");
  });

  Deno.test(`ChatStreamTranslator (JSON array): ${name}`, () => {
    const { text, result } = run(input, "json-array");
    assert.deepEqual(JSON.parse(text), want);
    assert.equal(result.end, end ?? "complete");
  });

  Deno.test(`ChatStreamTranslator gives the same answer fed byte by byte: ${name}`, () => {
    const bytes = input.join("");
    const split = [...bytes].map((c) => c);
    assert.deepEqual(sseChunks(run(split, "sse").text), want);
  });
}

Deno.test("ChatStreamTranslator forwards each text delta as soon as its event is complete", () => {
  const { outputs } = run([
    event({ delta: { content: "Hel" } }).slice(0, 30),
    event({ delta: { content: "Hel" } }).slice(30),
    event({ delta: { content: "lo" } }),
    event({ delta: {}, finish_reason: "stop" }),
    DONE,
  ]);
  assert.equal(outputs[0], "", "nothing before the event is whole");
  assert.deepEqual(sseChunks(outputs[1]), [textChunk("Hel")]);
  assert.deepEqual(sseChunks(outputs[2]), [textChunk("lo")]);
  assert.equal(outputs[3], "", "the finishing chunk waits for the usage or the end");
  assert.deepEqual(sseChunks(outputs[4]), [finalChunk([{ text: "" }], "STOP", false)]);
});

Deno.test("ChatStreamTranslator reads CRLF- and CR-framed events split across chunks", () => {
  const crlf = event({ delta: { content: "A" } }).replaceAll("\n", "\r\n");
  const cr = event({ delta: { content: "B" }, finish_reason: "stop" }).replaceAll("\n", "\r");
  const joined = crlf + cr + DONE.replaceAll("\n", "\r\n");
  const cut = joined.indexOf("\r\n\r\n") + 1;
  const { text } = run([joined.slice(0, cut), joined.slice(cut)]);
  assert.deepEqual(sseChunks(text), [
    textChunk("A"),
    textChunk("B"),
    finalChunk([{ text: "" }], "STOP", false),
  ]);
});

Deno.test("ChatStreamTranslator: an empty stream in JSON-array framing is still an array", () => {
  assert.equal(run([DONE], "json-array").text.startsWith("["), true);
  assert.equal(run([], "json-array").result.end, "truncated");
  assert.ok(Array.isArray(JSON.parse(run([], "json-array").text)));
});

Deno.test("ChatStreamTranslator reports usage in its result", () => {
  const { result } = run([
    event({ delta: { content: "x" }, finish_reason: "stop" }, { usage }),
    DONE,
  ]);
  assert.deepEqual(result, { end: "complete", usage: usageMetadata });
});

Deno.test("chatStreamToGemini() works as a TransformStream between two bodies", async () => {
  const upstream = new Response(
    event({ delta: { content: "Hi" } }) + event({ delta: {}, finish_reason: "stop" }, { usage }) +
      DONE,
  ).body!;
  const text = await new Response(
    upstream.pipeThrough(chatStreamToGemini({ model: MODEL, framing: "sse", provider: "p" })),
  ).text();
  assert.deepEqual(sseChunks(text), [textChunk("Hi"), finalChunk([{ text: "" }], "STOP")]);
});

for (
  const [file, code, status] of [
    ["stream-mid-error-rate-limit.sse", 429, "RESOURCE_EXHAUSTED"],
    ["stream-mid-error-server-error.sse", 500, "INTERNAL"],
  ] as const
) {
  Deno.test(`ChatStreamTranslator ends with an error event on OpenRouter's documented ${file}`, () => {
    const fixture = Deno.readTextFileSync(
      new URL(`../../test/fixtures/openrouter-errors/${file}`, import.meta.url),
    );
    const { text, result } = run([event({ delta: { content: "So far" } }), fixture]);
    const chunks = sseChunks(text);
    assert.deepEqual(chunks[0], textChunk("So far"));
    const error = (chunks[1] as { error: { code: number; status: string } }).error;
    assert.equal(error.code, code);
    assert.equal(error.status, status);
    assert.equal(chunks.length, 2);
    assert.equal(result.end, "provider_error");
  });
}
