/**
 * The rotator's own cost per request, without sockets: `app.fetch` on a generateContent request
 * against an in-process upstream that answers at once. What this measures is exactly the work the
 * rotator adds to a request (routing, auth, body, headers, key choice, bookkeeping, the answer),
 * so changes to the hot path can be compared in microseconds, far below the noise of a loopback
 * load test. `deno task bench:overhead`
 */

import { createApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { toPoolKeys } from "../src/keys.ts";

const ANSWER = new TextEncoder().encode(JSON.stringify({
  candidates: [{ content: { parts: [{ text: "Hello." }], role: "model" }, finishReason: "STOP" }],
  usageMetadata: { promptTokenCount: 8, candidatesTokenCount: 7, totalTokenCount: 15 },
  modelVersion: "gemini-2.5-flash",
}));
const BODY = JSON.stringify({ contents: [{ parts: [{ text: "Hello" }] }] });
const TOKEN = "bench-access-token-0123456789";

/** An upstream that answers every call with a small JSON body, like Google's. */
const upstream: typeof fetch = () =>
  Promise.resolve(
    new Response(ANSWER, {
      headers: {
        "content-type": "application/json; charset=UTF-8",
        "content-length": String(ANSWER.byteLength),
        vary: "Origin, X-Origin, Referer",
        server: "scaffolding on HTTPServer2",
        date: new Date().toUTCString(),
      },
    }),
  );

async function appWith(keyCount: number) {
  const values = Array.from(
    { length: keyCount },
    (_, i) => `AIzaSyBenchOkay${String(i).padStart(24, "0")}`,
  );
  const config = loadConfig({
    API_KEYS: values.join(","),
    ACCESS_TOKEN: TOKEN,
    GEMINI_API_BASE_URL: "http://127.0.0.1:9",
    LOG_REQUESTS: "false",
  });
  return await createApp({
    config,
    keys: await toPoolKeys(config.keys),
    fetch: upstream,
    writeLog: () => {},
  });
}

function request(): Request {
  return new Request("http://127.0.0.1:8080/v1beta/models/gemini-2.5-flash:generateContent", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "content-length": String(BODY.length),
      "x-goog-api-key": TOKEN,
      "user-agent": "google-genai-sdk/1.30.0 gl-node/v20",
      accept: "*/*",
    },
    body: BODY,
  });
}

const app3 = await appWith(3);
const app10k = await appWith(10_000);

Deno.bench("upstream stub alone (the floor of this bench)", { baseline: true }, async () => {
  const req = request();
  await req.arrayBuffer();
  const res = await upstream("http://127.0.0.1:9/");
  await res.arrayBuffer();
});

Deno.bench("rotator, 3 keys: app.fetch, answer read", async () => {
  const res = await app3.fetch(request());
  if (res.status !== 200) throw new Error(`status ${res.status}`);
  await res.arrayBuffer();
});

Deno.bench("rotator, 10,000 keys: app.fetch, answer read", async () => {
  const res = await app10k.fetch(request());
  if (res.status !== 200) throw new Error(`status ${res.status}`);
  await res.arrayBuffer();
});
