import assert from "node:assert/strict";
import { classify, parseGoogleError } from "./classify.ts";

const FIXTURES = new URL("../test/fixtures/gemini-errors/", import.meta.url);
const expected: Record<string, Record<string, unknown>> = JSON.parse(
  Deno.readTextFileSync(new URL("expected.json", FIXTURES)),
);

for (const [file, want] of Object.entries(expected)) {
  if (file === "//") continue;
  Deno.test(`classify() on the real body ${file}`, () => {
    const body = Deno.readTextFileSync(new URL(file, FIXTURES));
    const parsed = JSON.parse(body);
    const status = (Array.isArray(parsed) ? parsed[0] : parsed).error.code;
    const outcome = classify({ status, body }) as unknown as Record<string, unknown>;
    for (const [field, value] of Object.entries(want)) {
      assert.deepEqual(outcome[field], value, `${field} of ${file}`);
    }
  });
}

Deno.test("classify() covers every fixture in the directory", () => {
  const files = [...Deno.readDirSync(FIXTURES)].map((e) => e.name).filter((n) =>
    /^f\d+.*\.json$/.test(n)
  );
  for (const file of files) assert.ok(file in expected, `${file} has an expected outcome`);
});

Deno.test("classify() reads an error sent as an SSE data line", () => {
  const body = 'data: {"error":{"code":429,"message":"x","status":"RESOURCE_EXHAUSTED"}}\r\n\r\n';
  assert.equal(classify({ status: 429, body }).kind, "quota");
  assert.equal(parseGoogleError(body)?.status, "RESOURCE_EXHAUSTED");
});

Deno.test("classify() treats a 429 HTML page from a load balancer as an unknown quota", () => {
  assert.deepEqual(classify({ status: 429, body: "<html>Too Many Requests</html>" }), {
    kind: "quota",
    window: "unknown",
  });
});

Deno.test("classify() passes 502 HTML as transient and 504 as the client's", () => {
  assert.equal(classify({ status: 502, body: "<html>Bad Gateway</html>" }).kind, "transient");
  assert.equal(classify({ status: 504, body: "" }).kind, "client_error");
});

Deno.test("classify() does not blame the key for a file the project cannot see", () => {
  const body = JSON.stringify({
    error: {
      code: 403,
      message: "You do not have permission to access the File abc123 or it may not exist.",
      status: "PERMISSION_DENIED",
    },
  });
  assert.equal(classify({ status: 403, body }).kind, "client_error");
});

Deno.test("classify() reads the delay from the message when RetryInfo is missing", () => {
  const body = JSON.stringify({
    error: {
      code: 429,
      message: "Quota exceeded for metric: x, limit: 10\nPlease retry in 12.5s.",
      status: "RESOURCE_EXHAUSTED",
      details: [{
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        violations: [{ quotaId: "GenerateRequestsPerMinutePerProjectPerModel", quotaValue: "10" }],
      }],
    },
  });
  assert.deepEqual(classify({ status: 429, body }), {
    kind: "quota",
    window: "minute",
    retryDelayMs: 12_500,
    quotaId: "GenerateRequestsPerMinutePerProjectPerModel",
    limit: 10,
    unit: "requests",
  });
});

Deno.test("classify() says ok for 2xx and 3xx", () => {
  assert.equal(classify({ status: 200, body: "" }).kind, "ok");
  assert.equal(classify({ status: 304, body: "" }).kind, "ok");
});
