/**
 * The provider side end to end, without the proxy: a small test-only gateway translates a
 * native Gemini request for the scripted OpenRouter-style provider and translates its answer
 * back, and the real client libraries read the result: @google/genai sees Gemini's shapes
 * (streams, function calls, mid-stream errors) and the OpenAI SDK speaks to the mock directly.
 * This is the wiring src/proxy.ts performs on fallback, reduced to its data flow.
 */

import assert from "node:assert/strict";
import { GoogleGenAI, Type } from "@google/genai";
import OpenAI from "openai";
import { toPoolKeys } from "../src/keys.ts";
import { errorResponse } from "../src/errors.ts";
import { openRouter } from "../src/providers/openrouter.ts";
import type { Provider } from "../src/providers/provider.ts";
import { providerRequest } from "../src/providers/request.ts";
import { providerErrorBody } from "../src/translate/chat_error.ts";
import { chatStreamToGemini } from "../src/translate/chat_stream.ts";
import { chatToGemini } from "../src/translate/chat_to_gemini.ts";
import { geminiToChat } from "../src/translate/gemini_to_chat.ts";
import {
  type MockOpenAiProvider,
  PROVIDER_FIXTURES,
  type ProviderFixtureName,
  startMockOpenAiProvider,
} from "./mock_openai_provider.ts";
import { streamedChatText } from "./harness.ts";

const [KEY] = await toPoolKeys([{ value: "sk-or-v1-test0123456789abcdef0123456789" }]);

interface Gateway {
  readonly url: string;
  close(): Promise<void>;
}

/** Native Gemini in, chat completions to the provider, Gemini back out. */
function startGateway(provider: Provider): Gateway {
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    const url = new URL(req.url);
    const match = /\/models\/([^/:]+):(generateContent|streamGenerateContent)$/.exec(url.pathname);
    if (!match) return errorResponse(404, "NOT_FOUND", "no route");
    const [, geminiModel, method] = match;
    const stream = method === "streamGenerateContent";
    const framing = url.searchParams.get("alt") === "sse" ? "sse" : "json-array";
    const translated = geminiToChat(await req.json(), provider.mapModel(geminiModel)!, stream);
    if (!translated.ok) return errorResponse(429, "RESOURCE_EXHAUSTED", translated.reason);
    const upstream = await fetch(providerRequest(provider, KEY, translated.request));
    if (upstream.status >= 400) {
      const text = await upstream.text();
      return Response.json(providerErrorBody(upstream.status, text, provider.name), {
        status: upstream.status,
      });
    }
    if (stream) {
      return new Response(
        upstream.body!.pipeThrough(
          chatStreamToGemini({ model: geminiModel, framing, provider: provider.name }),
        ),
        {
          headers: { "content-type": framing === "sse" ? "text/event-stream" : "application/json" },
        },
      );
    }
    return Response.json(chatToGemini(await upstream.json(), geminiModel));
  });
  return {
    url: `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`,
    close: () => server.shutdown(),
  };
}

async function withSetup(
  test: (ctx: { mock: MockOpenAiProvider; gateway: Gateway; genai: GoogleGenAI }) => Promise<void>,
) {
  const mock = startMockOpenAiProvider();
  const gateway = startGateway(openRouter({ baseUrl: mock.baseUrl }));
  const genai = new GoogleGenAI({ apiKey: "client-token", httpOptions: { baseUrl: gateway.url } });
  try {
    await test({ mock, gateway, genai });
  } finally {
    await gateway.close();
    await mock.close();
  }
}

const weatherTool = {
  functionDeclarations: [{
    name: "get_weather",
    description: "Current weather",
    parameters: {
      type: Type.OBJECT,
      properties: { city: { type: Type.STRING } },
      required: ["city"],
    },
  }],
};

Deno.test("@google/genai reads a translated answer; the provider got a chat request with its own key", async () => {
  await withSetup(async ({ mock, genai }) => {
    const response = await genai.models.generateContent({
      model: "gemini-2.5-pro",
      contents: "Say hello",
      config: { systemInstruction: "Be brief.", temperature: 0.3, maxOutputTokens: 64 },
    });
    assert.equal(response.text, "Hello from the fallback");
    assert.equal(response.candidates?.[0].finishReason, "STOP");
    assert.equal(response.usageMetadata?.totalTokenCount, 12);
    const [request] = mock.requests;
    assert.equal(request.path, "/api/v1/chat/completions");
    assert.equal(request.key, KEY.value);
    assert.deepEqual(request.json, {
      model: "google/gemini-2.5-pro",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Say hello" },
      ],
      temperature: 0.3,
      max_tokens: 64,
    });
  });
});

Deno.test("@google/genai gets whole function calls, then its function results reach the provider as tool messages", async () => {
  await withSetup(async ({ mock, genai }) => {
    mock.setDefault({
      type: "ok",
      toolCalls: [{ name: "get_weather", arguments: '{"city":"Paris"}' }],
    });
    const response = await genai.models.generateContent({
      model: "gemini-2.5-flash",
      contents: "Weather in Paris?",
      config: { tools: [weatherTool] },
    });
    assert.deepEqual(response.functionCalls?.map((c) => ({ name: c.name, args: c.args })), [
      { name: "get_weather", args: { city: "Paris" } },
    ]);
    const tools = mock.requests[0].json?.tools as { function: { parameters: unknown } }[];
    assert.deepEqual(tools[0].function.parameters, {
      type: "object",
      properties: { city: { type: "string" } },
      required: ["city"],
    });

    mock.setDefault({ type: "ok", text: "It is sunny." });
    const next = await genai.models.generateContent({
      model: "gemini-2.5-flash",
      contents: [
        { role: "user", parts: [{ text: "Weather in Paris?" }] },
        response.candidates![0].content!,
        {
          role: "user",
          parts: [{ functionResponse: { name: "get_weather", response: { sky: "sunny" } } }],
        },
      ],
      config: { tools: [weatherTool] },
    });
    assert.equal(next.text, "It is sunny.");
    const messages = mock.requests[1].json?.messages as Record<string, unknown>[];
    assert.deepEqual(messages.slice(1), [
      {
        role: "assistant",
        content: null,
        tool_calls: [{
          id: "call_get_weather_1",
          type: "function",
          function: { name: "get_weather", arguments: '{"city":"Paris"}' },
        }],
      },
      { role: "tool", tool_call_id: "call_get_weather_1", content: '{"sky":"sunny"}' },
    ]);
  });
});

Deno.test("@google/genai streams a translated answer chunk by chunk, usage on the last", async () => {
  await withSetup(async ({ mock, genai }) => {
    mock.setDefault({ type: "ok", text: "one two three" });
    const stream = await genai.models.generateContentStream({
      model: "gemini-2.5-flash",
      contents: "Count",
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.deepEqual(chunks.map((c) => c.text ?? ""), ["one", " two", " three", ""]);
    const last = chunks.at(-1)!;
    assert.equal(last.candidates?.[0].finishReason, "STOP");
    assert.equal(last.usageMetadata?.totalTokenCount, 11);
    assert.equal(mock.requests[0].json?.stream, true);
  });
});

Deno.test("@google/genai gets streamed tool-call fragments as one whole function call", async () => {
  await withSetup(async ({ mock, genai }) => {
    mock.setDefault({
      type: "ok",
      toolCalls: [{ name: "get_weather", arguments: '{"city":"Reykjavik"}' }],
    });
    const stream = await genai.models.generateContentStream({
      model: "gemini-2.5-flash",
      contents: "Weather?",
      config: { tools: [weatherTool] },
    });
    const calls = [];
    for await (const chunk of stream) calls.push(...(chunk.functionCalls ?? []));
    assert.deepEqual(calls.map((c) => ({ name: c.name, args: c.args })), [
      { name: "get_weather", args: { city: "Reykjavik" } },
    ]);
  });
});

Deno.test({
  name: "@google/genai raises the provider's mid-stream error after the text before it",
  // The SDK throws on the error chunk without closing the response body; Deno 2.5's sanitizer
  // reports that body as leaked (2.9's does not).
  sanitizeResources: false,
  fn: () => midStreamError(),
});

async function midStreamError() {
  await withSetup(async ({ mock, genai }) => {
    mock.setDefault({ type: "stream_error", chunks: 2 });
    const stream = await genai.models.generateContentStream({
      model: "gemini-2.5-flash",
      contents: "Go",
    });
    const texts: string[] = [];
    await assert.rejects(
      async () => {
        for await (const chunk of stream) texts.push(chunk.text ?? "");
      },
      (error: Error) => {
        assert.match(error.message, /failed mid-answer: Rate limit exceeded/);
        return true;
      },
    );
    assert.deepEqual(texts, ["word0", " word1"]);
  });
}

Deno.test("a stream without alt=sse arrives as one JSON array", async () => {
  await withSetup(async ({ gateway }) => {
    const response = await fetch(
      `${gateway.url}/v1beta/models/gemini-2.5-flash:streamGenerateContent`,
      { method: "POST", body: JSON.stringify({ contents: [{ parts: [{ text: "Hi" }] }] }) },
    );
    const chunks = await response.json();
    assert.ok(Array.isArray(chunks));
    assert.equal(
      chunks.map((c: { candidates: { content: { parts: { text: string }[] } }[] }) =>
        c.candidates[0]?.content.parts[0].text ?? ""
      ).join(""),
      "Hello from the fallback",
    );
    assert.equal(chunks.at(-1).candidates[0].finishReason, "STOP");
  });
});

Deno.test("a request the translation cannot carry never reaches the provider", async () => {
  await withSetup(async ({ mock, genai }) => {
    await assert.rejects(
      genai.models.generateContent({
        model: "gemini-2.5-flash",
        contents: "Search the web",
        config: { tools: [{ googleSearch: {} }] },
      }),
      /Google Search grounding/,
    );
    assert.equal(mock.requests.length, 0);
  });
});

Deno.test("the OpenAI SDK talks to the mock provider as to OpenRouter, streams and errors included", async () => {
  const mock = startMockOpenAiProvider();
  try {
    const client = new OpenAI({ apiKey: KEY.value, baseURL: mock.baseUrl, maxRetries: 0 });
    mock.setDefault({ type: "ok", text: "streamed words here" });
    const stream = await client.chat.completions.create({
      model: "google/gemini-2.5-flash",
      messages: [{ role: "user", content: "Hi" }],
      stream: true,
    });
    assert.equal(await streamedChatText(stream), "streamed words here");

    mock.script(KEY.value, { type: "error", fixture: "rate_limited" });
    await assert.rejects(
      client.chat.completions.create({
        model: "google/gemini-2.5-flash",
        messages: [{ role: "user", content: "Hi" }],
      }),
      (error: InstanceType<typeof OpenAI.APIError>) => {
        assert.equal(error.status, 429);
        assert.equal(new Headers(error.headers as HeadersInit).get("retry-after"), "30");
        return true;
      },
    );
  } finally {
    await mock.close();
  }
});

Deno.test("each scripted OpenRouter error classifies as its fixture says", async () => {
  const mock = startMockOpenAiProvider();
  const provider = openRouter({ baseUrl: mock.baseUrl });
  const expected: Record<ProviderFixtureName, string> = {
    rate_limited: "quota",
    free_daily: "quota",
    upstream_rate_limited: "transient",
    credits: "project_exhausted",
    unauthorized: "key_rejected",
    key_limit: "key_rejected",
    no_endpoints: "not_key",
    unavailable: "transient",
  };
  try {
    for (const name of Object.keys(PROVIDER_FIXTURES) as ProviderFixtureName[]) {
      mock.script(KEY.value, { type: "error", fixture: name });
      const response = await fetch(
        providerRequest(provider, KEY, { model: "m", messages: [{ role: "user", content: "x" }] }),
      );
      const outcome = provider.classify(
        response.status,
        response.headers,
        await response.text(),
        Date.UTC(2026, 8, 7, 18),
      );
      assert.equal(outcome.kind, expected[name], name);
      if (name === "rate_limited") {
        assert.deepEqual(outcome, { kind: "quota", window: "minute", retryDelayMs: 30_000 });
      }
    }
  } finally {
    await mock.close();
  }
});
