import assert from "node:assert/strict";
import { classifyOpenAiError, openAiCompatible } from "./openai_compatible.ts";
import { providerEffect } from "./provider.ts";
import { DEFAULTS } from "../config.ts";

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
const json = (value: unknown) => JSON.stringify(value);

Deno.test("openAiCompatible() maps only the models it was given, '*' for the rest", () => {
  const groq = openAiCompatible({
    name: "groq",
    baseUrl: "https://api.groq.com/openai/v1",
    models: { "gemini-2.5-flash": "llama-3.3-70b-versatile" },
  });
  assert.equal(groq.mapModel("gemini-2.5-flash"), "llama-3.3-70b-versatile");
  assert.equal(groq.mapModel("models/gemini-2.5-flash"), "llama-3.3-70b-versatile");
  assert.equal(groq.mapModel("gemini-2.5-pro"), undefined);
  const any = openAiCompatible({
    name: "local",
    baseUrl: "http://127.0.0.1:1/v1",
    models: { "*": "qwen3" },
  });
  assert.equal(any.mapModel("gemini-2.5-pro"), "qwen3");
});

Deno.test("classifyOpenAiError() follows OpenAI's documented errors", () => {
  const c = (status: number, body: unknown = {}, headers: Record<string, string> = {}) =>
    classifyOpenAiError(status, new Headers(headers), json(body), NOW);
  assert.deepEqual(c(401, { error: { message: "Incorrect API key provided" } }), {
    kind: "key_rejected",
    scope: "key",
    reason: "UNAUTHENTICATED",
  });
  assert.deepEqual(
    c(429, {
      error: {
        message: "You exceeded your current quota, please check your plan and billing details.",
        type: "insufficient_quota",
        code: "insufficient_quota",
      },
    }),
    { kind: "project_exhausted", reason: "PREPAY_DEPLETED" },
  );
  assert.deepEqual(
    c(429, { error: { message: "Rate limit reached", code: "rate_limit_exceeded" } }, {
      "x-ratelimit-reset-requests": "6m0s",
    }),
    { kind: "quota", window: "minute", retryDelayMs: 360_000 },
  );
  assert.deepEqual(c(429, {}, { "retry-after": "7200" }), {
    kind: "quota",
    window: "day",
    retryDelayMs: 7_200_000,
  });
  assert.deepEqual(c(429), { kind: "quota", window: "unknown" });
  assert.deepEqual(
    c(403, { error: { message: "Country, region, or territory not supported" } }),
    { kind: "not_key", reason: "LOCATION" },
  );
  assert.deepEqual(c(403), { kind: "key_rejected", scope: "key", reason: "PERMISSION_DENIED" });
  assert.deepEqual(c(404), { kind: "not_key", reason: "MODEL_NOT_FOUND" });
  assert.deepEqual(c(400), { kind: "client_error" });
  assert.deepEqual(c(503), { kind: "transient", reason: "OVERLOADED" });
  assert.deepEqual(c(200), { kind: "ok" });
});

Deno.test("providerEffect() ends a provider's daily cooldown when the provider said", () => {
  const ctx = {
    keyId: "abc",
    project: "key:abc",
    model: "gemini-2.5-pro",
    status: 429,
    now: NOW,
    settings: DEFAULTS_SETTINGS,
  };
  const effect = providerEffect(
    { kind: "quota", window: "day", retryDelayMs: 3_600_000, quotaId: "free-models-per-day" },
    ctx,
  );
  assert.deepEqual(effect, {
    type: "cooldown",
    record: {
      project: "key:abc",
      model: "gemini-2.5-pro",
      until: NOW + 3_600_000,
      window: "day",
      reason: "free-models-per-day",
      setAt: NOW,
      keyId: "abc",
    },
  });
  // Anything else follows the Gemini rules.
  const minute = providerEffect({ kind: "quota", window: "minute", retryDelayMs: 5000 }, ctx);
  assert.equal(minute.type === "cooldown" && minute.record.until, NOW + 5000);
  assert.equal(
    providerEffect({ kind: "key_rejected", scope: "key", reason: "X" }, ctx).type,
    "disable",
  );
});

const DEFAULTS_SETTINGS = {
  minuteCooldownMs: DEFAULTS.MINUTE_COOLDOWN_MS,
  unknownQuotaCooldownMs: DEFAULTS.UNKNOWN_QUOTA_COOLDOWN_MS,
  noAllowanceCooldownMs: DEFAULTS.NO_ALLOWANCE_COOLDOWN_MS,
  spendCapCooldownMs: DEFAULTS.SPEND_CAP_COOLDOWN_MS,
  disabledRecheckMs: DEFAULTS.DISABLED_RECHECK_MS,
};
