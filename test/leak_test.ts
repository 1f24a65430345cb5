/**
 * Keys and tokens never leak: every scenario's log lines, response bodies and response headers
 * are searched for every pool key and the access token, including when Google's own error body
 * or headers echo the key (DebugInfo "Invalid API key: ...").
 */

import assert from "node:assert/strict";
import { GoogleGenAI } from "@google/genai";
import OpenAI from "openai";
import { FIXTURE_FILES, type FixtureName } from "./mock_upstream.ts";
import { generate, startRotator, testKey, TOKEN } from "./harness.ts";

const KEYS = ["leak-a", "leak-b", "leak-c"].map(testKey);
/** A key that is not shaped like a Gemini key, so only exact-match redaction can catch it. */
const OPAQUE = "opaque_pool_secret_9f8e7d6c";

Deno.test("no key or token appears in any log line, response body or header", async () => {
  const rotator = await startRotator({
    keys: [...KEYS, `proj:${OPAQUE}`],
    env: { LOG_LEVEL: "debug", TRANSIENT_RETRIES: "1", PACING: "off" },
  });
  const seen: string[] = [];
  const record = async (response: Response) => {
    seen.push(`${response.status} ${JSON.stringify([...response.headers])}`);
    seen.push(await response.text());
  };
  try {
    // Every real error body, on every key, native and OpenAI-compatible, streaming or not.
    for (const fixture of Object.keys(FIXTURE_FILES) as FixtureName[]) {
      rotator.app.pool.clearCooldowns();
      for (const key of rotator.keys) rotator.app.pool.removeDisablement("key", key.id);
      for (const project of new Set(rotator.keys.map((k) => k.project))) {
        rotator.app.pool.removeDisablement("project", project);
      }
      rotator.mock.setDefault({ type: "error", fixture });
      await record(await generate(rotator));
      await record(
        await fetch(`${rotator.url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse`, {
          method: "POST",
          headers: { authorization: `Bearer ${TOKEN}` },
          body: "{}",
        }),
      );
      await record(
        await fetch(`${rotator.url}/v1beta/openai/chat/completions?key=${TOKEN}`, {
          method: "POST",
          body: JSON.stringify({ model: "gemini-2.5-flash", messages: [] }),
        }),
      );
    }
    // Upstream answers that echo the key back, in a passed-through body and in a header.
    for (const key of [...KEYS, OPAQUE]) {
      rotator.mock.script(key, {
        type: "raw",
        status: 400,
        body: JSON.stringify({
          error: {
            code: 400,
            message: `Invalid JSON payload received for key ${key}`,
            status: "INVALID_ARGUMENT",
            details: [{
              "@type": "type.googleapis.com/google.rpc.DebugInfo",
              detail: `key: ${key}`,
            }],
          },
        }),
        headers: { "content-type": "application/json", "x-debug-key": key },
      });
    }
    rotator.app.pool.clearCooldowns();
    for (let i = 0; i < 4; i++) await record(await generate(rotator));
    // Wrong tokens and the SDKs' own error paths.
    await record(await generate(rotator, "gemini-2.5-flash", { token: `${TOKEN}x` }));
    const ai = new GoogleGenAI({ apiKey: TOKEN, httpOptions: { baseUrl: rotator.url } });
    rotator.mock.setDefault({ type: "error", fixture: "invalid" });
    for (const key of rotator.keys) rotator.app.pool.removeDisablement("key", key.id);
    for (const key of [...KEYS, OPAQUE]) {
      rotator.mock.script(key, { type: "error", fixture: "invalid" });
    }
    const sdkError = await ai.models.generateContent({ model: "m", contents: "x" }).catch((e) => e);
    seen.push(String(sdkError?.message), String(sdkError?.stack));
    const oa = new OpenAI({
      apiKey: TOKEN,
      baseURL: `${rotator.url}/v1beta/openai/`,
      maxRetries: 0,
    });
    const oaError = await oa.chat.completions.create({ model: "m", messages: [] }).catch((e) => e);
    seen.push(String(oaError?.message));
    await rotator.app.close();

    const haystack = [...seen, ...rotator.logs].join("\n");
    assert.ok(rotator.logs.length > 50, "the scenarios produced log lines");
    for (const secret of [...KEYS, OPAQUE, TOKEN]) {
      assert.ok(!haystack.includes(secret), `a secret leaked: ${secret.slice(0, 8)}...`);
    }
    // The upstream did receive the keys, so the check above is not vacuous.
    assert.ok(rotator.mock.requests.some((r) => r.key === OPAQUE));
    assert.match(haystack, /\[REDACTED\]/);
  } finally {
    await rotator.close();
  }
});
