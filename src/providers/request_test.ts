import assert from "node:assert/strict";
import { toPoolKeys } from "../keys.ts";
import { openAiCompatible } from "./openai_compatible.ts";
import { openRouter } from "./openrouter.ts";
import { chatCompletionsUrl, providerRequest, withProviderModel } from "./request.ts";

const [orKey, groqKey] = await toPoolKeys([
  { value: "sk-or-v1-0123456789abcdef" },
  { value: "gsk_0123456789abcdef" },
]);
const chat = {
  model: "google/gemini-2.5-pro",
  messages: [{ role: "user" as const, content: "Hi" }],
};

Deno.test("providerRequest() posts to the provider's own base with its key in Authorization", async () => {
  const provider = openRouter({ title: "My App" });
  const request = providerRequest(provider, orKey, chat);
  assert.equal(request.method, "POST");
  assert.equal(request.url, "https://openrouter.ai/api/v1/chat/completions");
  assert.equal(request.headers.get("authorization"), `Bearer ${orKey.value}`);
  assert.equal(request.headers.get("content-type"), "application/json");
  assert.equal(request.headers.get("accept"), "application/json");
  assert.equal(request.headers.get("x-title"), "My App");
  assert.equal(request.redirect, "manual");
  assert.deepEqual(await request.json(), chat);
  assert.ok(!request.url.includes(orKey.value), "the key is never in the URL");
});

Deno.test("providerRequest(): each provider's key goes only to that provider's host", () => {
  const groq = openAiCompatible({
    name: "groq",
    baseUrl: "https://api.groq.com/openai/v1",
    models: { "*": "llama" },
    headers: { "x-team": "a" },
  });
  const sent = [
    { provider: openRouter(), key: orKey },
    { provider: groq, key: groqKey },
  ].map(({ provider, key }) => providerRequest(provider, key, chat));
  assert.equal(new URL(sent[0].url).host, "openrouter.ai");
  assert.equal(new URL(sent[1].url).host, "api.groq.com");
  assert.equal(sent[1].url, "https://api.groq.com/openai/v1/chat/completions");
  for (
    const [request, own, other] of [[sent[0], orKey, groqKey], [sent[1], groqKey, orKey]] as const
  ) {
    const headers = [...request.headers].map(([name, value]) => `${name}: ${value}`).join("\n");
    assert.ok(headers.includes(own.value));
    assert.ok(!headers.includes(other.value), "never another provider's key");
    // The key appears once, in Authorization.
    assert.equal(headers.split(own.value).length - 1, 1);
    assert.equal(request.headers.get("authorization"), `Bearer ${own.value}`);
  }
  assert.equal(sent[1].headers.get("x-team"), "a");
});

Deno.test("providerRequest() asks for an event stream when the body streams", () => {
  const request = providerRequest(openRouter(), orKey, { ...chat, stream: true });
  assert.equal(request.headers.get("accept"), "text/event-stream");
});

Deno.test("providerRequest(): extra headers cannot replace the key's header", () => {
  const sneaky = { ...openRouter(), extraHeaders: { authorization: "Bearer other" } };
  const request = providerRequest(sneaky, orKey, chat);
  assert.equal(request.headers.get("authorization"), `Bearer ${orKey.value}`);
});

Deno.test("chatCompletionsUrl() keeps a base URL's path and port", () => {
  const local = openAiCompatible({
    name: "local",
    baseUrl: "http://127.0.0.1:8080/v1",
    models: {},
  });
  assert.equal(chatCompletionsUrl(local), "http://127.0.0.1:8080/v1/chat/completions");
});

Deno.test("withProviderModel() swaps only the model of an OpenAI-surface body", () => {
  const body = { model: "gemini-2.5-pro", messages: [], stream: true, temperature: 0 };
  assert.deepEqual(withProviderModel(body, "google/gemini-2.5-pro"), {
    model: "google/gemini-2.5-pro",
    messages: [],
    stream: true,
    temperature: 0,
  });
  assert.equal(withProviderModel([], "m"), undefined);
  assert.equal(withProviderModel("{", "m"), undefined);
  assert.equal(withProviderModel(null, "m"), undefined);
});
