import assert from "node:assert/strict";
import type { PoolKey } from "./keys.ts";
import {
  clientHeaders,
  upstreamHeaders,
  UpstreamOriginError,
  upstreamUrl,
  writeClientHeaders,
} from "./upstream.ts";

const KEY: PoolKey = {
  id: "abcdef012345",
  value: "AIzaSyTestPoolKey000000000000000000001",
  project: "p",
  source: "env",
};
const ORIGIN = "https://generativelanguage.googleapis.com";

Deno.test("upstream URLs stay on the configured origin whatever the path holds", () => {
  for (const path of ["//evil.example/x", "/\\evil.example/x", "/@evil.example", "/..//x"]) {
    const url = upstreamUrl(ORIGIN, path, "");
    assert.equal(new URL(url).origin, ORIGIN, path);
  }
  assert.throws(() => upstreamUrl(ORIGIN, "evil.example/x", ""), UpstreamOriginError);
  assert.throws(() => upstreamUrl(ORIGIN, "@evil.example/x", ""), UpstreamOriginError);
});

Deno.test("the client's key parameter never reaches the upstream URL", () => {
  assert.equal(
    upstreamUrl(ORIGIN, "/v1beta/models", "?key=secret&pageSize=5&%6Bey=x"),
    `${ORIGIN}/v1beta/models?pageSize=5`,
  );
});

Deno.test("upstream headers: credentials and hop-by-hop fields dropped, the pool key added", () => {
  const client = new Headers({
    "content-type": "application/json",
    "x-goog-api-key": "client-token",
    authorization: "Bearer client-token",
    "x-access-token": "client-token",
    cookie: "a=b",
    connection: "keep-alive, x-secret-hop",
    "x-secret-hop": "1",
    "x-rotator-max-wait": "3",
    "x-goog-api-client": "genai-js/1.30.0",
    via: "1.1 corporate-proxy",
  });
  // A legal field name that must stay a name, not reach an object's prototype.
  client.append("__proto__", "odd but legal");
  const native = upstreamHeaders(client, KEY, "native");
  assert.deepEqual(Object.entries(native), [
    ["__proto__", "odd but legal"],
    ["content-type", "application/json"],
    ["via", "1.1 corporate-proxy, 1.1 gemini-key-rotator"],
    ["x-goog-api-client", "genai-js/1.30.0"],
    ["x-goog-api-key", KEY.value],
  ]);
  assert.equal(Object.getPrototypeOf(native), null);
  // fetch takes the record as it is, and sends the same fields.
  const sent = new Headers(native);
  assert.equal(sent.get("x-goog-api-key"), KEY.value);
  assert.equal(sent.get("authorization"), null);
  const openai = new Headers(upstreamHeaders(client, KEY, "openai"));
  assert.equal(openai.get("authorization"), `Bearer ${KEY.value}`);
  assert.equal(openai.get("x-goog-api-key"), null);
});

Deno.test("client headers: nothing that names the key, no stale encoding or length", () => {
  const upstream = new Headers({
    "content-type": "application/json",
    "content-encoding": "gzip",
    "content-length": "120",
    "set-cookie": "NID=1",
    "x-echo": `key=${KEY.value}`,
    "x-rotator-key": "an upstream rotator's",
    "server-timing": "gfet4t7; dur=12",
  });
  const headers = clientHeaders(upstream, KEY);
  assert.deepEqual([...headers], [
    ["content-type", "application/json"],
    ["server-timing", "gfet4t7; dur=12"],
    ["via", "1.1 gemini-key-rotator"],
  ]);
  const plain = new Headers();
  writeClientHeaders(new Headers({ "content-length": "7", via: "1.1 google" }), KEY, plain);
  assert.equal(plain.get("content-length"), "7");
  assert.equal(plain.get("via"), "1.1 google, 1.1 gemini-key-rotator");
});
