import assert from "node:assert/strict";
import { chatToGemini, usageMetadataOf } from "./chat_to_gemini.ts";
import type { GenerateContentResponse } from "./gemini_types.ts";

const MODEL = "gemini-2.5-pro";

interface Case {
  readonly name: string;
  readonly chat: unknown;
  readonly want: GenerateContentResponse;
}

const usage = { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 };
const usageMetadata = { promptTokenCount: 12, candidatesTokenCount: 5, totalTokenCount: 17 };

const cases: Case[] = [
  {
    name: "text with stop becomes a STOP candidate with usage and the response id",
    chat: {
      id: "gen-123",
      object: "chat.completion",
      model: "google/gemini-2.5-pro",
      choices: [{
        index: 0,
        message: { role: "assistant", content: "Hello!" },
        finish_reason: "stop",
      }],
      usage,
    },
    want: {
      candidates: [{
        content: { parts: [{ text: "Hello!" }], role: "model" },
        finishReason: "STOP",
        index: 0,
      }],
      usageMetadata,
      modelVersion: MODEL,
      responseId: "gen-123",
    },
  },
  {
    name: "length is MAX_TOKENS",
    chat: { choices: [{ index: 0, message: { content: "Once upon" }, finish_reason: "length" }] },
    want: {
      candidates: [{
        content: { parts: [{ text: "Once upon" }], role: "model" },
        finishReason: "MAX_TOKENS",
        index: 0,
      }],
      modelVersion: MODEL,
    },
  },
  {
    name: "content_filter is SAFETY, with an empty text part rather than no parts",
    chat: { choices: [{ index: 0, message: { content: null }, finish_reason: "content_filter" }] },
    want: {
      candidates: [{
        content: { parts: [{ text: "" }], role: "model" },
        finishReason: "SAFETY",
        index: 0,
      }],
      modelVersion: MODEL,
    },
  },
  {
    name: "tool calls become functionCall parts with parsed args, finishing with STOP",
    chat: {
      choices: [{
        index: 0,
        message: {
          role: "assistant",
          content: "Let me check.",
          tool_calls: [
            {
              id: "call_a",
              type: "function",
              function: { name: "get_weather", arguments: '{"city":"Paris"}' },
            },
            { id: "call_b", type: "function", function: { name: "now", arguments: "" } },
          ],
        },
        finish_reason: "tool_calls",
      }],
      usage,
    },
    want: {
      candidates: [{
        content: {
          parts: [
            { text: "Let me check." },
            { functionCall: { name: "get_weather", args: { city: "Paris" } } },
            { functionCall: { name: "now", args: {} } },
          ],
          role: "model",
        },
        finishReason: "STOP",
        index: 0,
      }],
      usageMetadata,
      modelVersion: MODEL,
    },
  },
  {
    name: "arguments that are not a JSON object are MALFORMED_FUNCTION_CALL",
    chat: {
      choices: [{
        index: 0,
        message: {
          tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: '{"a":' } }],
        },
        finish_reason: "tool_calls",
      }],
    },
    want: {
      candidates: [{
        content: { parts: [{ text: "" }], role: "model" },
        finishReason: "MALFORMED_FUNCTION_CALL",
        index: 0,
      }],
      modelVersion: MODEL,
    },
  },
  {
    name: "several choices become candidates by index (candidateCount)",
    chat: {
      choices: [
        { index: 1, message: { content: "B" }, finish_reason: "stop" },
        { index: 0, message: { content: [{ type: "text", text: "A" }] }, finish_reason: "stop" },
      ],
    },
    want: {
      candidates: [
        { content: { parts: [{ text: "A" }], role: "model" }, finishReason: "STOP", index: 0 },
        { content: { parts: [{ text: "B" }], role: "model" }, finishReason: "STOP", index: 1 },
      ],
      modelVersion: MODEL,
    },
  },
  {
    name: "OpenRouter's finish_reason error is OTHER",
    chat: {
      choices: [{
        index: 0,
        message: { content: "partial" },
        finish_reason: "error",
        error: { code: 502, message: "Provider disconnected" },
      }],
    },
    want: {
      candidates: [{
        content: { parts: [{ text: "partial" }], role: "model" },
        finishReason: "OTHER",
        index: 0,
      }],
      modelVersion: MODEL,
    },
  },
  {
    name: "a refusal is shown as text",
    chat: {
      choices: [{
        index: 0,
        message: { content: null, refusal: "I can't help." },
        finish_reason: "stop",
      }],
    },
    want: {
      candidates: [{
        content: { parts: [{ text: "I can't help." }], role: "model" },
        finishReason: "STOP",
        index: 0,
      }],
      modelVersion: MODEL,
    },
  },
  {
    name: "an answer without choices has no candidates",
    chat: { id: "x" },
    want: { candidates: [], modelVersion: MODEL, responseId: "x" },
  },
];

for (const { name, chat, want } of cases) {
  Deno.test(`chatToGemini(): ${name}`, () => {
    assert.deepEqual(chatToGemini(chat, MODEL), want);
  });
}

Deno.test("usageMetadataOf() counts reasoning tokens as thoughts, apart from the answer", () => {
  assert.deepEqual(
    usageMetadataOf({
      prompt_tokens: 10,
      completion_tokens: 50,
      total_tokens: 60,
      completion_tokens_details: { reasoning_tokens: 30 },
      prompt_tokens_details: { cached_tokens: 4 },
    }),
    {
      promptTokenCount: 10,
      candidatesTokenCount: 20,
      totalTokenCount: 60,
      thoughtsTokenCount: 30,
      cachedContentTokenCount: 4,
    },
  );
});

Deno.test("usageMetadataOf() is undefined without usage and fills a missing total", () => {
  assert.equal(usageMetadataOf(undefined), undefined);
  assert.equal(usageMetadataOf(null), undefined);
  assert.deepEqual(usageMetadataOf({ prompt_tokens: 3, completion_tokens: 4 }), {
    promptTokenCount: 3,
    candidatesTokenCount: 4,
    totalTokenCount: 7,
  });
});
