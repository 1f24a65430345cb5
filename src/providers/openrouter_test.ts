import assert from "node:assert/strict";
import { classifyOpenRouter, openRouter, OPENROUTER_BASE_URL } from "./openrouter.ts";

const FIXTURES = new URL("../../test/fixtures/openrouter-errors/", import.meta.url);
const NOW = Date.UTC(2026, 8, 7, 18, 0, 0);

interface FixtureCase {
  readonly file?: string;
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly want: Record<string, unknown>;
}

const cases: Record<string, FixtureCase | string> = JSON.parse(
  Deno.readTextFileSync(new URL("cases.json", FIXTURES)),
);

for (const [name, spec] of Object.entries(cases)) {
  if (typeof spec === "string") continue;
  Deno.test(`classifyOpenRouter() on the real body ${name}`, () => {
    const body = Deno.readTextFileSync(new URL(spec.file ?? name, FIXTURES));
    const outcome = classifyOpenRouter(
      spec.status,
      new Headers(spec.headers),
      body,
      NOW,
    ) as unknown as Record<string, unknown>;
    for (const [field, value] of Object.entries(spec.want)) {
      assert.deepEqual(outcome[field], value, `${field} of ${name}`);
    }
  });
}

Deno.test("classifyOpenRouter() covers every JSON fixture in the directory", () => {
  const named = new Set(
    Object.entries(cases).flatMap(([name, spec]) =>
      typeof spec === "string" ? [] : [spec.file ?? name]
    ),
  );
  for (const entry of Deno.readDirSync(FIXTURES)) {
    if (entry.name.endsWith(".json") && entry.name !== "cases.json") {
      assert.ok(named.has(entry.name), `${entry.name} has a case`);
    }
  }
});

const json = (value: unknown) => JSON.stringify(value);

Deno.test("classifyOpenRouter() waits out a 402 in-flight budget that says when", () => {
  const body = json({
    error: { code: 402, message: "x", metadata: { limit_source: "openrouter_in_flight_budget" } },
  });
  assert.deepEqual(classifyOpenRouter(402, new Headers({ "retry-after": "5" }), body, NOW), {
    kind: "quota",
    window: "minute",
    retryDelayMs: 5000,
    quotaId: "openrouter_in_flight_budget",
  });
});

Deno.test("classifyOpenRouter() cools a key whose daily credit limit is spent until 00:00 UTC", () => {
  const body = json({
    error: { code: 403, message: "Key limit exceeded (daily limit). Manage it using ..." },
  });
  assert.deepEqual(classifyOpenRouter(403, new Headers(), body, NOW), {
    kind: "quota",
    window: "day",
    retryDelayMs: 6 * 3600 * 1000,
    quotaId: "KEY_LIMIT_DAILY",
  });
});

Deno.test("classifyOpenRouter() reads a per-minute free-model limit as a minute window", () => {
  const body = json({ error: { code: 429, message: "Rate limit exceeded: free-models-per-min." } });
  assert.deepEqual(classifyOpenRouter(429, new Headers(), body, NOW), {
    kind: "quota",
    window: "minute",
    retryDelayMs: 60_000,
    quotaId: "free-models-per-min",
  });
});

Deno.test("classifyOpenRouter() reads an error inside a 200 answer by its code", () => {
  const body = json({
    error: { code: 429, message: "Rate limit exceeded: free-models-per-day." },
    choices: [{ finish_reason: "error" }],
  });
  const outcome = classifyOpenRouter(200, new Headers(), body, NOW);
  assert.equal(outcome.kind, "quota");
  assert.equal(classifyOpenRouter(200, new Headers(), json({ choices: [] }), NOW).kind, "ok");
});

Deno.test("classifyOpenRouter(): server trouble is transient, a timeout the request's", () => {
  const classify = (status: number) => classifyOpenRouter(status, new Headers(), "", NOW);
  assert.deepEqual(classify(500), { kind: "transient", reason: "INTERNAL" });
  assert.deepEqual(classify(502), { kind: "transient", reason: "BAD_GATEWAY" });
  assert.deepEqual(classify(503), { kind: "transient", reason: "OVERLOADED" });
  assert.deepEqual(classify(504), { kind: "client_error" });
  assert.deepEqual(classify(408), { kind: "client_error" });
  assert.deepEqual(classify(400), { kind: "client_error" });
  assert.deepEqual(classify(302), { kind: "not_key", reason: "REDIRECTED" });
});

Deno.test("classifyOpenRouter() never throws on HTML or garbage", () => {
  for (const status of [200, 401, 402, 403, 429, 502]) {
    classifyOpenRouter(status, new Headers({ "retry-after": "soon" }), "<html>x</html>", NOW);
    classifyOpenRouter(status, new Headers(), '{"error":null}', NOW);
    classifyOpenRouter(status, new Headers(), "[1,2", NOW);
  }
});

Deno.test("openRouter() maps Gemini names to google/ slugs unless told otherwise", () => {
  const provider = openRouter();
  assert.equal(provider.baseUrl, OPENROUTER_BASE_URL);
  assert.equal(provider.mapModel("gemini-2.5-pro"), "google/gemini-2.5-pro");
  assert.equal(provider.mapModel("models/gemini-2.5-flash"), "google/gemini-2.5-flash");
  const custom = openRouter({
    models: { "gemini-2.5-pro": "anthropic/claude-sonnet-4", "*": "openrouter/auto" },
  });
  assert.equal(custom.mapModel("gemini-2.5-pro"), "anthropic/claude-sonnet-4");
  assert.equal(custom.mapModel("gemini-2.5-flash"), "openrouter/auto");
});

Deno.test("openRouter() sends the key as a Bearer token and attribution when configured", () => {
  const provider = openRouter({ referer: "https://example.com", title: "My App" });
  assert.deepEqual(provider.authHeaders("sk-or-v1-abc"), { authorization: "Bearer sk-or-v1-abc" });
  assert.deepEqual(provider.extraHeaders, {
    "http-referer": "https://example.com",
    "x-title": "My App",
  });
  assert.deepEqual(openRouter().extraHeaders, {});
});
