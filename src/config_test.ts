import assert from "node:assert/strict";
import { ConfigError, DEFAULT_UPSTREAM, loadConfig } from "./config.ts";

const KEY = "AIzaSyA1234567890abcdefghijklmnopqrstuv";

function fails(env: Record<string, string>, pattern: RegExp, options = {}) {
  assert.throws(() => loadConfig(env, options), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.match(error.message, /^Cannot start: /);
    assert.match(error.message, pattern);
    assert.ok(!error.message.includes(KEY), "never echoes a key");
    assert.ok(!error.message.includes("s3cret-token"), "never echoes a token");
    return true;
  });
}

Deno.test("loadConfig() defaults: loopback without a token, Google upstream, port 8000", () => {
  const config = loadConfig({ API_KEYS: KEY });
  assert.equal(config.hostname, "127.0.0.1");
  assert.equal(config.port, 8000);
  assert.equal(config.upstreamOrigin, DEFAULT_UPSTREAM);
  assert.equal(config.keys.length, 1);
  assert.deepEqual(config.accessTokens, []);
  assert.ok(Object.isFrozen(config));
});

Deno.test("loadConfig() listens on all interfaces when a token is set", () => {
  assert.equal(loadConfig({ ACCESS_TOKEN: "s3cret-token-123" }).hostname, "0.0.0.0");
});

Deno.test("loadConfig() merges ACCESS_TOKEN and ACCESS_TOKENS without duplicates", () => {
  const config = loadConfig({
    ACCESS_TOKEN: "s3cret-token-123",
    ACCESS_TOKENS: "other-token-456, s3cret-token-123",
  });
  assert.deepEqual(config.accessTokens, ["s3cret-token-123", "other-token-456"]);
});

Deno.test("loadConfig() refuses a public address without a token unless opted in", () => {
  fails({ HOST: "0.0.0.0" }, /HOST is "0.0.0.0" but no ACCESS_TOKEN/);
  assert.equal(loadConfig({ HOST: "0.0.0.0", ALLOW_UNAUTHENTICATED: "true" }).hostname, "0.0.0.0");
  assert.equal(loadConfig({ HOST: "localhost" }).hostname, "localhost");
});

Deno.test("loadConfig() requires a token on a public platform", () => {
  fails({}, /ACCESS_TOKEN is not set, and this platform serves/, { publicPlatform: true });
});

Deno.test("loadConfig() names the variable and the problem", () => {
  fails({ PORT: "eighty" }, /PORT is "eighty": set it to a whole number from 0 to 65535/);
  fails({ PORT: "70000" }, /PORT/);
  fails({ MAX_ATTEMPTS: "0" }, /MAX_ATTEMPTS/);
  fails({ LOG_LEVEL: "loud" }, /LOG_LEVEL is "loud": set it to one of debug, info, warn, error/);
  fails({ LOG_REQUESTS: "maybe" }, /LOG_REQUESTS is "maybe": set it to true or false/);
  fails({ GEMINI_API_BASE_URL: "not a url" }, /GEMINI_API_BASE_URL is not a URL/);
  fails({ GEMINI_API_BASE_URL: "ftp://example.com" }, /must use https/);
  fails({ GEMINI_API_BASE_URL: "https://example.com/v1beta" }, /origin only/);
  fails({ GEMINI_API_BASE_URL: "https://user:pw@example.com" }, /user name or password/);
  fails({ ACCESS_TOKEN: "short" }, /shorter than 8 characters/);
  fails({ ACCESS_TOKEN: "has space s3cret-token" }, /spaces, quotes/);
  fails({ MAX_BODY_BYTES: "12" }, /MAX_BODY_BYTES/);
});

Deno.test("loadConfig() never prints a key from a malformed API_KEYS", () => {
  fails({ API_KEYS: `["${KEY}"` }, /API_KEYS starts with "\[" but is not valid JSON/);
  fails(
    { API_KEYS: `[{"key":"${KEY}","extra":1}]` },
    /API_KEYS entry 1 has a field other than "key", "project" and "label"/,
  );
  fails({ API_KEYS: `bad project!:${KEY}` }, /API_KEYS entry 1 has an invalid project name/);
  fails({ API_KEYS: `${KEY} with spaces` }, /API_KEYS entry 1 contains spaces/);
});

Deno.test("loadConfig() accepts a trailing slash on the upstream origin", () => {
  assert.equal(
    loadConfig({ GEMINI_API_BASE_URL: "http://127.0.0.1:9999/" }).upstreamOrigin,
    "http://127.0.0.1:9999",
  );
});
