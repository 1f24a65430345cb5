/**
 * The real client libraries, unmodified, pointed at the rotator: the Google Gen AI SDK with
 * apiKey = access token and baseUrl = the rotator, and the OpenAI SDK with baseURL = the
 * rotator's /v1beta/openai/.
 */

import assert from "node:assert/strict";
import { ApiError, GoogleGenAI } from "@google/genai";
import OpenAI from "openai";
import { FakeClock, startRotator, streamedChatText, testKey, TOKEN } from "./harness.ts";

const A = testKey("alpha");
const B = testKey("bravo");
const C = testKey("charlie");

function genai(url: string): GoogleGenAI {
  return new GoogleGenAI({ apiKey: TOKEN, httpOptions: { baseUrl: url } });
}

function openai(url: string): OpenAI {
  return new OpenAI({ apiKey: TOKEN, baseURL: `${url}/v1beta/openai/`, maxRetries: 0 });
}

Deno.test("@google/genai: generateContent works through the rotator", async () => {
  const rotator = await startRotator({ keys: [A, B] });
  try {
    const response = await genai(rotator.url).models.generateContent({
      model: "gemini-2.5-flash",
      contents: "Say hello",
    });
    assert.equal(response.text, "Hello from the mock");
    const [request] = rotator.mock.requests;
    assert.match(request.path, /^\/v1(beta)?\/models\/gemini-2\.5-flash:generateContent$/);
    assert.equal(request.key, A, "the SDK's apiKey (our token) was replaced by a pool key");
  } finally {
    await rotator.close();
  }
});

Deno.test("@google/genai: a stream arrives in chunks and a 429 on the first key is invisible", async () => {
  const rotator = await startRotator({ keys: [A, B] });
  rotator.mock.script(A, { type: "error", fixture: "rpm" });
  rotator.mock.script(B, { type: "slow_stream", chunks: 3, intervalMs: 30 });
  try {
    const stream = await genai(rotator.url).models.generateContentStream({
      model: "gemini-2.5-flash",
      contents: "Tell me a story",
    });
    const texts: string[] = [];
    for await (const chunk of stream) texts.push(chunk.text ?? "");
    assert.deepEqual(texts, ["chunk 0", "chunk 1", "chunk 2"]);
    assert.deepEqual(rotator.mock.requests.map((r) => r.key), [A, B]);
    assert.match(rotator.mock.requests[1].search, /alt=sse/);
  } finally {
    await rotator.close();
  }
});

Deno.test("@google/genai: all keys spent gives an ApiError 429 with the rotator's message", async () => {
  const clock = new FakeClock();
  const rotator = await startRotator({ keys: [A], clock });
  rotator.mock.script(A, { type: "error", fixture: "rpm" });
  try {
    const ai = genai(rotator.url);
    await assert.rejects(
      ai.models.generateContent({ model: "gemini-2.5-flash", contents: "hi" }),
      (error: unknown) => {
        assert.ok(error instanceof ApiError);
        assert.equal(error.status, 429);
        assert.match(error.message, /rate-limited|RESOURCE_EXHAUSTED/);
        return true;
      },
    );
  } finally {
    await rotator.close();
  }
});

Deno.test("@google/genai: models.list, countTokens and embedContent go through", async () => {
  const rotator = await startRotator({ keys: [A] });
  try {
    const ai = genai(rotator.url);
    const pager = await ai.models.list();
    const names: string[] = [];
    for await (const model of pager) names.push(model.name ?? "");
    assert.ok(names.includes("models/gemini-2.5-flash"));
    const count = await ai.models.countTokens({ model: "gemini-2.5-flash", contents: "hi" });
    assert.equal(count.totalTokens, 8);
    const embedding = await ai.models.embedContent({
      model: "gemini-embedding-001",
      contents: "hi",
    });
    assert.equal(embedding.embeddings?.[0].values?.length, 3);
  } finally {
    await rotator.close();
  }
});

Deno.test("@google/genai: 50 concurrent requests over 5 keys all succeed and spread evenly", async () => {
  const keys = ["k1", "k2", "k3", "k4", "k5"].map(testKey);
  const rotator = await startRotator({ keys });
  try {
    const ai = genai(rotator.url);
    const results = await Promise.all(
      Array.from(
        { length: 50 },
        () => ai.models.generateContent({ model: "gemini-2.5-flash", contents: "hi" }),
      ),
    );
    assert.ok(results.every((r) => r.text === "Hello from the mock"));
    for (const key of keys) assert.equal(rotator.mock.requestsFor(key).length, 10);
  } finally {
    await rotator.close();
  }
});

Deno.test("@google/genai: concurrent requests with rate-limited keys never see a 429", async () => {
  const keys = ["k1", "k2", "k3", "k4"].map(testKey);
  const rotator = await startRotator({ keys });
  rotator.mock.script(keys[0], { type: "error", fixture: "rpm" });
  rotator.mock.script(keys[1], { type: "error", fixture: "rpd" });
  try {
    const ai = genai(rotator.url);
    const results = await Promise.allSettled(
      Array.from(
        { length: 40 },
        () => ai.models.generateContent({ model: "gemini-2.5-flash", contents: "hi" }),
      ),
    );
    assert.deepEqual(results.filter((r) => r.status === "rejected"), []);
    // Requests already in flight may each meet a spent key once; none after the cooldown.
    assert.ok(rotator.mock.requestsFor(keys[0]).length <= 40);
    const late = rotator.mock.requests.slice(-10).map((r) => r.key);
    assert.ok(late.every((k) => k === keys[2] || k === keys[3]));
  } finally {
    await rotator.close();
  }
});

Deno.test("openai: chat completions, streaming and not, with a 429 on the first key", async () => {
  const rotator = await startRotator({ keys: [A, B, C] });
  rotator.mock.script(A, { type: "error", fixture: "rpd_openai" });
  try {
    const client = openai(rotator.url);
    const completion = await client.chat.completions.create({
      model: "gemini-2.5-flash",
      messages: [{ role: "user", content: "Say hello" }],
    });
    assert.equal(completion.choices[0].message.content, "Hello from the mock");
    const [first, second] = rotator.mock.requests;
    assert.equal(first.path, "/v1beta/openai/chat/completions");
    assert.equal(first.headers.get("authorization"), `Bearer ${A}`);
    assert.equal(second.headers.get("authorization"), `Bearer ${B}`);
    assert.equal(first.headers.get("x-goog-api-key"), null);

    const stream = await client.chat.completions.create({
      model: "gemini-2.5-flash",
      messages: [{ role: "user", content: "Say hello" }],
      stream: true,
    });
    assert.equal(await streamedChatText(stream), "Hello from the mock");
    // A's per-day cooldown holds for this model: it was not tried again.
    assert.equal(rotator.mock.requestsFor(A).length, 1);

    // A stream whose first key answers 429 (before any byte) is retried on another key. (A new
    // model's rotation starts at A; the mock repeats a script's last answer.)
    rotator.mock.script(A, { type: "error", fixture: "rpm" });
    rotator.mock.script(B, { type: "ok" });
    const sent = rotator.mock.requests.length;
    const retried = await client.chat.completions.create({
      model: "gemini-2.5-pro",
      messages: [{ role: "user", content: "Say hello" }],
      stream: true,
    });
    assert.equal(await streamedChatText(retried), "Hello from the mock");
    assert.deepEqual(rotator.mock.requests.slice(sent).map((r) => r.key), [A, B]);
  } finally {
    await rotator.close();
  }
});

Deno.test("openai: embeddings, models list and images, the first key rate-limited", async () => {
  const rotator = await startRotator({ keys: [A, B] });
  rotator.mock.script(A, { type: "error", fixture: "rpm" }, { type: "ok" });
  try {
    const client = openai(rotator.url);
    const embedding = await client.embeddings.create({
      model: "gemini-embedding-001",
      input: "hello",
    });
    assert.equal(embedding.data[0].embedding.length, 3);
    const models = await client.models.list();
    assert.ok(models.data.some((m) => m.id === "models/gemini-2.5-flash"));
    const image = await client.images.generate({
      model: "imagen-4.0-generate-001",
      prompt: "a lighthouse",
      response_format: "b64_json",
      n: 1,
    });
    assert.equal(atob(image.data![0].b64_json!), "mock image bytes");
    const paths = rotator.mock.requests.map((r) => [r.path, r.key]);
    assert.deepEqual(paths.slice(0, 2), [
      ["/v1beta/openai/embeddings", A],
      ["/v1beta/openai/embeddings", B],
    ], "the 429 on A was retried on B");
    assert.equal(paths.at(-1)![0], "/v1beta/openai/images/generations");
    assert.ok(
      rotator.mock.requests.every((r) => r.headers.get("authorization")?.startsWith("Bearer AIza")),
    );
  } finally {
    await rotator.close();
  }
});

Deno.test("openai: a wrong token is a 401 AuthenticationError", async () => {
  const rotator = await startRotator({ keys: [A] });
  try {
    const client = new OpenAI({
      apiKey: "not-the-token",
      baseURL: `${rotator.url}/v1beta/openai/`,
      maxRetries: 0,
    });
    await assert.rejects(client.models.list(), (error: unknown) => {
      assert.ok(error instanceof OpenAI.AuthenticationError);
      return true;
    });
    assert.equal(rotator.mock.requests.length, 0);
  } finally {
    await rotator.close();
  }
});

Deno.test("openai: a fixed /v1 base URL works (chat, embeddings, models map to /v1beta/openai/)", async () => {
  const rotator = await startRotator({ keys: [A] });
  try {
    const client = new OpenAI({ apiKey: TOKEN, baseURL: `${rotator.url}/v1`, maxRetries: 0 });
    const completion = await client.chat.completions.create({
      model: "gemini-2.5-flash",
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(completion.choices[0].message.content, "Hello from the mock");
    const embedding = await client.embeddings.create({ model: "gemini-embedding-001", input: "x" });
    assert.equal(embedding.data.length, 1);
    const models = await client.models.list();
    assert.ok(models.data.length > 0);
    assert.deepEqual(rotator.mock.requests.map((r) => r.path), [
      "/v1beta/openai/chat/completions",
      "/v1beta/openai/embeddings",
      "/v1beta/openai/models",
    ]);
    assert.ok(rotator.mock.requests.every((r) => r.headers.get("authorization") === `Bearer ${A}`));
  } finally {
    await rotator.close();
  }
});

Deno.test("/v1/models stays the native Gemini path for clients that send x-goog-api-key", async () => {
  const rotator = await startRotator({ keys: [A] });
  try {
    const pager = await genai(rotator.url).models.list();
    const names: string[] = [];
    for await (const model of pager) names.push(model.name ?? "");
    assert.deepEqual(names, ["models/gemini-2.5-flash"]);
    assert.match(rotator.mock.requests[0].path, /^\/v1(beta)?\/models$/);
    assert.equal(rotator.mock.requests[0].headers.get("x-goog-api-key"), A);
  } finally {
    await rotator.close();
  }
});
