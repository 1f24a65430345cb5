import assert from "node:assert/strict";
import { ConfigError } from "../config.ts";
import { parseProvidersConfig } from "./config.ts";

const OR_KEY = "sk-or-v1-aaaaaaaaaaaaaaaaaaaaaaaa";
const GROQ_KEY = "gsk_bbbbbbbbbbbbbbbbbbbbbbbb";

/** Asserts a ConfigError whose message matches and contains no key. */
function refuses(env: Record<string, string>, file: string | undefined, message: RegExp) {
  assert.throws(() => parseProvidersConfig(env, file), (error: unknown) => {
    assert.ok(error instanceof ConfigError, String(error));
    assert.match(error.message, message);
    assert.match(error.message, /^Cannot start: /);
    for (const secret of [OR_KEY, GROQ_KEY, "sk-or-v1", "gsk_", "s3cret"]) {
      assert.ok(!error.message.includes(secret), `the message shows ${secret}: ${error.message}`);
    }
    return true;
  });
}

Deno.test("parseProvidersConfig() has no providers when nothing is set", () => {
  assert.deepEqual(parseProvidersConfig({}), []);
});

Deno.test("parseProvidersConfig() reads OpenRouter keys in API_KEYS' list formats", () => {
  const second = "sk-or-v1-cccccccccccccccccccccccc";
  for (
    const text of [`${OR_KEY},${second}`, `${OR_KEY}\n${second}`, JSON.stringify([OR_KEY, second])]
  ) {
    const [openrouter] = parseProvidersConfig({ OPENROUTER_API_KEYS: text });
    assert.equal(openrouter.provider.name, "openrouter");
    assert.equal(openrouter.provider.baseUrl, "https://openrouter.ai/api/v1");
    assert.deepEqual(openrouter.keys.map((k) => k.value), [OR_KEY, second]);
  }
  const [withAccount] = parseProvidersConfig({ OPENROUTER_API_KEYS: `acct-1:${OR_KEY}` });
  assert.equal(withAccount.keys[0].project, "acct-1");
});

Deno.test("parseProvidersConfig() applies OPENROUTER_BASE_URL, _MODELS, _REFERER and _TITLE", () => {
  const [openrouter] = parseProvidersConfig({
    OPENROUTER_API_KEYS: OR_KEY,
    OPENROUTER_BASE_URL: "http://127.0.0.1:9999/api/v1/",
    OPENROUTER_MODELS: "gemini-2.5-pro=anthropic/claude-sonnet-4; *=openrouter/auto",
    OPENROUTER_REFERER: "https://example.com",
    OPENROUTER_TITLE: "Rotator",
  });
  const p = openrouter.provider;
  assert.equal(p.baseUrl, "http://127.0.0.1:9999/api/v1");
  assert.equal(p.mapModel("gemini-2.5-pro"), "anthropic/claude-sonnet-4");
  assert.equal(p.mapModel("gemini-2.5-flash"), "openrouter/auto");
  assert.deepEqual(p.extraHeaders, { "http-referer": "https://example.com", "x-title": "Rotator" });
});

const groqEntry = {
  name: "groq",
  baseUrl: "https://api.groq.com/openai/v1",
  keys: [GROQ_KEY],
  models: { "gemini-2.5-flash": "llama-3.3-70b-versatile" },
  headers: { "X-Team": "platform" },
};

Deno.test("parseProvidersConfig() reads PROVIDERS_FILE entries after OpenRouter, in order", () => {
  const providers = parseProvidersConfig(
    { OPENROUTER_API_KEYS: OR_KEY, LOCAL_KEYS: "local-1,local-2" },
    JSON.stringify([
      groqEntry,
      {
        name: "local",
        baseUrl: "http://127.0.0.1:11434/v1",
        keysEnv: "LOCAL_KEYS",
        models: { "*": "qwen3:8b" },
      },
    ]),
  );
  assert.deepEqual(providers.map((p) => p.provider.name), ["openrouter", "groq", "local"]);
  const groq = providers[1];
  assert.equal(groq.provider.baseUrl, "https://api.groq.com/openai/v1");
  assert.deepEqual(groq.keys.map((k) => k.value), [GROQ_KEY]);
  assert.equal(groq.provider.mapModel("gemini-2.5-flash"), "llama-3.3-70b-versatile");
  assert.equal(groq.provider.mapModel("gemini-2.5-pro"), undefined);
  assert.deepEqual(groq.provider.extraHeaders, { "x-team": "platform" });
  assert.deepEqual(providers[2].keys.map((k) => k.value), ["local-1", "local-2"]);
  assert.equal(providers[2].provider.mapModel("gemini-2.5-pro"), "qwen3:8b");
});

Deno.test("parseProvidersConfig(): a file entry named openrouter gets OpenRouter's rules", () => {
  const [openrouter] = parseProvidersConfig(
    {},
    JSON.stringify([{ name: "openrouter", keys: [OR_KEY] }]),
  );
  assert.equal(openrouter.provider.baseUrl, "https://openrouter.ai/api/v1");
  assert.equal(openrouter.provider.mapModel("gemini-2.5-pro"), "google/gemini-2.5-pro");
  const body = '{"error":{"message":"Insufficient credits.","code":402}}';
  assert.equal(openrouter.provider.classify(402, new Headers(), body, 0).kind, "project_exhausted");
});

const file = (entry: Record<string, unknown>) => JSON.stringify([{ ...groqEntry, ...entry }]);

const refusals: [string, Record<string, string>, string | undefined, RegExp][] = [
  [
    "PROVIDERS_FILE that is not JSON, without quoting it",
    {},
    `[{"name":"x","keys":["${GROQ_KEY}"`,
    /PROVIDERS_FILE is not valid JSON/,
  ],
  ["PROVIDERS_FILE that is not an array", {}, "{}", /must hold a JSON array/],
  ["an unknown field", {}, file({ model: {} }), /entry 1 has an unknown field "model"/],
  ["a bad name", {}, file({ name: "Groq!" }), /"name" must be up to 32 lower-case/],
  ["the name gemini", {}, file({ name: "gemini" }), /"gemini" is the rotator's own/],
  [
    "duplicate names",
    {},
    JSON.stringify([groqEntry, { ...groqEntry, keys: ["other-key-1234"] }]),
    /two entries named "groq"/,
  ],
  [
    "openrouter twice",
    { OPENROUTER_API_KEYS: OR_KEY },
    JSON.stringify([{ name: "openrouter", keys: ["k-12345678"] }]),
    /configure OpenRouter in one place/,
  ],
  [
    "a base URL with another scheme",
    {},
    file({ baseUrl: "ftp://api.groq.com/v1" }),
    /"baseUrl" must use https/,
  ],
  [
    "a base URL with a query",
    {},
    file({ baseUrl: "https://api.groq.com/v1?key=s3cret" }),
    /must not have a query/,
  ],
  [
    "a base URL with a user name",
    {},
    file({ baseUrl: "https://s3cret@api.groq.com/v1" }),
    /must not contain a user name/,
  ],
  [
    "a base URL ending in /chat/completions",
    {},
    file({ baseUrl: "https://api.groq.com/openai/v1/chat/completions" }),
    /without \/chat\/completions/,
  ],
  [
    "a missing base URL",
    {},
    JSON.stringify([{ name: "x", keys: ["k-12345678"], models: { "*": "m" } }]),
    /needs a "baseUrl"/,
  ],
  ["no keys", {}, file({ keys: [] }), /"keys" is empty/],
  ["keys and keysEnv together", {}, file({ keysEnv: "X" }), /exactly one of "keys"/],
  [
    "a keysEnv that is empty",
    {},
    file({ keys: undefined, keysEnv: "NOPE" }),
    /names NOPE, which is empty/,
  ],
  [
    "a key with spaces, without showing it",
    {},
    file({ keys: [`${GROQ_KEY} s3cret`] }),
    /entry 1 \("groq"\) "keys" entry 1 contains spaces/,
  ],
  ["no models", {}, file({ models: {} }), /"models" is empty/],
  [
    "a model mapped to nothing",
    {},
    file({ models: { "gemini-2.5-pro": "" } }),
    /"models" entry "gemini-2.5-pro"/,
  ],
  [
    "a header that would carry a second credential",
    {},
    file({ headers: { Authorization: "Bearer s3cret" } }),
    /may not set Authorization/,
  ],
  [
    "a header value that is not a string, without showing it",
    {},
    file({ headers: { "X-Key": ["s3cret"] } }),
    /invalid name or value for "X-Key"/,
  ],
  [
    "OpenRouter settings without keys",
    { OPENROUTER_BASE_URL: "https://openrouter.ai/api/v1" },
    undefined,
    /OPENROUTER_BASE_URL is set but OPENROUTER_API_KEYS is empty/,
  ],
  [
    "a bad OPENROUTER_BASE_URL",
    { OPENROUTER_API_KEYS: OR_KEY, OPENROUTER_BASE_URL: "openrouter.ai" },
    undefined,
    /OPENROUTER_BASE_URL is not a URL/,
  ],
  [
    "a bad OPENROUTER_MODELS entry",
    { OPENROUTER_API_KEYS: OR_KEY, OPENROUTER_MODELS: "gemini-2.5-pro" },
    undefined,
    /OPENROUTER_MODELS entry 1 must be gemini-model=openrouter-model/,
  ],
  [
    "a Gemini key also given to OpenRouter",
    { API_KEYS: `AIzaSyA,${OR_KEY}`, OPENROUTER_API_KEYS: OR_KEY },
    undefined,
    /key 1 of provider openrouter is also configured for API_KEYS/,
  ],
  [
    "one key for two providers",
    { OPENROUTER_API_KEYS: GROQ_KEY },
    file({}),
    /key 1 of provider groq is also configured for openrouter/,
  ],
];

for (const [name, env, text, message] of refusals) {
  Deno.test(`parseProvidersConfig() refuses ${name}`, () => refuses(env, text, message));
}
