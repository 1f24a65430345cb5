import assert from "node:assert/strict";
import { providerErrorBody } from "./chat_error.ts";

Deno.test("providerErrorBody() gives Google's shape, naming the provider", () => {
  const body = providerErrorBody(
    402,
    '{"error":{"message":"Insufficient credits.","code":402}}',
    "openrouter",
  );
  assert.equal(body.error.code, 402);
  assert.equal(body.error.status, "RESOURCE_EXHAUSTED");
  assert.equal(
    body.error.message,
    "The fallback provider openrouter answered: Insufficient credits.",
  );
  assert.equal(body.error.details?.[0].reason, "FALLBACK_PROVIDER_ERROR");
});

Deno.test("providerErrorBody() maps statuses to google.rpc names", () => {
  const status = (code: number) => providerErrorBody(code, "", "p").error.status;
  assert.equal(status(400), "INVALID_ARGUMENT");
  assert.equal(status(401), "UNAUTHENTICATED");
  assert.equal(status(403), "PERMISSION_DENIED");
  assert.equal(status(404), "NOT_FOUND");
  assert.equal(status(429), "RESOURCE_EXHAUSTED");
  assert.equal(status(502), "UNAVAILABLE");
  assert.equal(status(503), "UNAVAILABLE");
  assert.equal(status(504), "DEADLINE_EXCEEDED");
  assert.equal(status(422), "INVALID_ARGUMENT");
});

Deno.test("providerErrorBody() blanks key-shaped words a provider quotes", () => {
  const body = providerErrorBody(
    401,
    '{"error":{"message":"Incorrect API key provided: sk-proj-abc1****wxyz. Find yours."}}',
    "openai",
  );
  assert.doesNotMatch(body.error.message, /sk-proj/);
  assert.match(body.error.message, /\[REDACTED\]/);
});

Deno.test("providerErrorBody() carries a non-JSON body's text and an empty one's status", () => {
  assert.match(
    providerErrorBody(502, "<html>Bad Gateway</html>", "p").error.message,
    /Bad Gateway/,
  );
  assert.match(providerErrorBody(503, "", "p").error.message, /HTTP 503/);
});
