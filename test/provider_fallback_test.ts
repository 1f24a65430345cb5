/**
 * Provider fallback end to end: every Gemini key is rate-limited, and an OpenRouter-style
 * provider on 127.0.0.1 answers instead: the real @google/genai SDK gets Gemini-shaped answers
 * (whole and streamed), the OpenAI SDK its own; the provider's key goes only to the provider.
 */

import assert from "node:assert/strict";
import { GoogleGenAI } from "@google/genai";
import OpenAI from "openai";
import {
  generate,
  type Rotator,
  startRotator,
  streamedChatText,
  testKey,
  TOKEN,
} from "./harness.ts";
import { startMockOpenAiProvider } from "./mock_openai_provider.ts";
import { startWebhookReceiver } from "./webhook_receiver.ts";

const A = testKey("fb-a");
const OR1 = "sk-or-v1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa01";
const OR2 = "sk-or-v1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa02";

async function withFallback(
  body: (rotator: Rotator, provider: ReturnType<typeof startMockOpenAiProvider>) => Promise<void>,
  env: Record<string, string> = {},
) {
  const provider = startMockOpenAiProvider();
  const rotator = await startRotator({
    keys: [A],
    env: {
      OPENROUTER_API_KEYS: `${OR1},${OR2}`,
      OPENROUTER_BASE_URL: provider.baseUrl,
      MAX_WAIT_SECONDS: "0",
      ...env,
    },
  });
  rotator.mock.setDefault({ type: "error", fixture: "rpd" });
  try {
    await body(rotator, provider);
  } finally {
    await rotator.close();
    await provider.close();
  }
}

Deno.test("@google/genai gets a Gemini-shaped answer from OpenRouter when every key is spent", async () => {
  await withFallback(async (rotator, provider) => {
    provider.setDefault({ type: "ok", text: "Hello from the fallback" });
    const ai = new GoogleGenAI({ apiKey: TOKEN, httpOptions: { baseUrl: rotator.url } });
    const answer = await ai.models.generateContent({
      model: "gemini-2.5-pro",
      contents: "Say hello",
      config: { systemInstruction: "Be brief.", temperature: 0.2 },
    });
    assert.equal(answer.text, "Hello from the fallback");
    const [request] = provider.requests;
    assert.equal(request.path, "/api/v1/chat/completions");
    assert.equal(request.json?.model, "google/gemini-2.5-pro");
    assert.equal(request.key, OR1);
    assert.deepEqual((request.json?.messages as { role: string }[]).map((m) => m.role), [
      "system",
      "user",
    ]);
    // The provider's key went only to the provider; the Gemini mock never saw it.
    assert.ok(rotator.mock.requests.every((r) => r.key !== OR1 && r.key !== OR2));
  });
});

Deno.test("a streamed fallback answer arrives chunk by chunk in Gemini's SSE framing", async () => {
  await withFallback(async (rotator, provider) => {
    provider.setDefault({ type: "ok", text: "one two three", intervalMs: 20 });
    const ai = new GoogleGenAI({ apiKey: TOKEN, httpOptions: { baseUrl: rotator.url } });
    const stream = await ai.models.generateContentStream({
      model: "gemini-2.5-flash",
      contents: "Count",
    });
    const texts: string[] = [];
    for await (const chunk of stream) if (chunk.text) texts.push(chunk.text);
    assert.ok(texts.length >= 3, `streamed in pieces: ${JSON.stringify(texts)}`);
    assert.equal(texts.join(""), "one two three");
  });
});

Deno.test("the response says who answered: x-rotator-provider and x-rotator-model", async () => {
  await withFallback(async (rotator, provider) => {
    provider.setDefault({ type: "ok", text: "hi" });
    const response = await generate(rotator, "gemini-2.5-flash");
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("x-rotator-provider"), "openrouter");
    assert.equal(response.headers.get("x-rotator-model"), "google/gemini-2.5-flash");
    const body = await response.json();
    assert.equal(body.candidates[0].content.parts[0].text, "hi");
    const log = rotator.logs.map((l) => JSON.parse(l)).find((l) => l.msg === "request");
    assert.equal(log.provider, "openrouter");
  });
});

Deno.test("a spent pool raises the 'no usable key' alert even though the fallback answered", async () => {
  const receiver = startWebhookReceiver();
  try {
    await withFallback(async (rotator, provider) => {
      provider.setDefault({ type: "ok", text: "hi" });
      const response = await generate(rotator, "gemini-2.5-flash");
      assert.equal(response.status, 200, "the client was served by the fallback");
      await response.body?.cancel();
      const message = await receiver.message(1);
      assert.match(
        String(message.json.text),
        /No usable key for model `gemini-2\.5-flash`: all 1 keys are cooling \(per-day quota spent, resets at midnight Pacific\)/,
      );
    }, {
      ALERT_WEBHOOK_URL: receiver.url,
      ALERT_FORMAT: "slack",
      ALERT_DEBOUNCE_MS: "0",
      ALERT_MIN_INTERVAL_MS: "0",
    });
  } finally {
    await receiver.close();
  }
});

Deno.test("the OpenAI SDK gets its answer from the provider, model name mapped", async () => {
  await withFallback(async (rotator, provider) => {
    rotator.mock.setDefault({ type: "error", fixture: "rpd_openai" });
    provider.setDefault({ type: "ok", text: "Hello via OpenRouter" });
    const client = new OpenAI({
      apiKey: TOKEN,
      baseURL: `${rotator.url}/v1beta/openai/`,
      maxRetries: 0,
    });
    const completion = await client.chat.completions.create({
      model: "gemini-2.5-flash",
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(completion.choices[0].message.content, "Hello via OpenRouter");
    const stream = await client.chat.completions.create({
      model: "gemini-2.5-flash",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    });
    assert.equal(await streamedChatText(stream), "Hello via OpenRouter");
    assert.ok(provider.requests.every((r) => r.json?.model === "google/gemini-2.5-flash"));
  });
});

Deno.test("a rate-limited provider key rotates to the next; all spent gives the 429 with the reason", async () => {
  await withFallback(async (rotator, provider) => {
    provider.script(OR1, { type: "error", fixture: "rate_limited" });
    provider.script(OR2, { type: "ok", text: "second key" });
    const first = await generate(rotator);
    assert.equal(first.status, 200);
    assert.equal((await first.json()).candidates[0].content.parts[0].text, "second key");
    assert.deepEqual(provider.requests.map((r) => r.key), [OR1, OR2]);

    provider.script(OR2, { type: "error", fixture: "credits" });
    const spent = await generate(rotator);
    assert.equal(spent.status, 429);
    const body = await spent.json();
    assert.match(body.error.message, /No fallback provider answered: openrouter's keys are spent/);
  });
});

Deno.test("a request the translation cannot carry is never sent to the provider", async () => {
  await withFallback(async (rotator, provider) => {
    const response = await generate(rotator, "gemini-2.5-flash", {
      body: {
        contents: [{ parts: [{ text: "x" }] }],
        tools: [{ googleSearch: {} }],
      },
    });
    assert.equal(response.status, 429);
    assert.match((await response.json()).error.message, /No fallback provider answered: .*search/i);
    assert.equal(provider.requests.length, 0);
  });
});

Deno.test("x-rotator-fallback: none keeps the request on Gemini", async () => {
  await withFallback(async (rotator, provider) => {
    const response = await generate(rotator, "gemini-2.5-flash", {
      headers: { "x-rotator-fallback": "none" },
    });
    assert.equal(response.status, 429);
    await response.body?.cancel();
    assert.equal(provider.requests.length, 0);
  });
});

Deno.test("provider keys never appear in logs or answers", async () => {
  await withFallback(async (rotator, provider) => {
    provider.setDefault({
      type: "raw",
      status: 400,
      body: JSON.stringify({ error: { code: 400, message: `bad request for key ${OR1}` } }),
    });
    const response = await generate(rotator);
    const text = await response.text();
    await rotator.app.close();
    for (const secret of [OR1, OR2]) {
      assert.ok(!text.includes(secret));
      assert.ok(!rotator.logs.join("\n").includes(secret));
    }
  });
});

Deno.test("metrics count the answers a fallback provider gave", async () => {
  await withFallback(async (rotator, provider) => {
    provider.setDefault({ type: "ok", text: "hi" });
    await (await generate(rotator)).body?.cancel();
    const metrics = await fetch(`${rotator.url}/metrics`, {
      headers: { authorization: "Bearer metrics-token-123456" },
    });
    const text = await metrics.text();
    assert.match(
      text,
      /gemini_rotator_fallback_answers_total\{provider="openrouter",status="200"\} 1/,
    );
  }, { METRICS_TOKEN: "metrics-token-123456" });
});
