/**
 * Client faults, end to end: clients that leave mid-upload, read too slowly, send too much or too
 * little, or send bytes no well-behaved client would (raw TCP via Deno.connect, where fetch cannot
 * send them). The rotator must answer or let go, send nothing half-formed upstream, and keep
 * serving. (Disconnects before the answer and mid-stream are in streaming_test.ts.)
 */

import assert from "node:assert/strict";
import type { RequestEvent } from "../src/events.ts";
import { generate, type Rotator, startRotator, testKey, TOKEN } from "./harness.ts";

const A = testKey("alpha");
const encoder = new TextEncoder();
const GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent";

/** A rotator whose finished requests can be awaited. */
async function observed(
  env: Record<string, string> = {},
): Promise<{ rotator: Rotator; nextRequest: () => Promise<RequestEvent> }> {
  const waiting: ((event: RequestEvent) => void)[] = [];
  const rotator = await startRotator({
    keys: [A],
    env,
    observers: [{ request: (event) => waiting.shift()?.(event) }],
  });
  return {
    rotator,
    nextRequest: () => new Promise((resolve) => waiting.push(resolve)),
  };
}

function portOf(rotator: Rotator): number {
  return Number(new URL(rotator.url).port);
}

/** Request head bytes for a raw HTTP/1.1 request. */
function head(target: string, headers: string[], method = "POST"): string {
  return `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n` +
    `x-goog-api-key: ${TOKEN}\r\n` +
    headers.map((h) => `${h}\r\n`).join("") + "\r\n";
}

/**
 * Writes `request` on a fresh connection and reads until the server closes it, or what came
 * back matches `until` (bounded by `maxMs`); returns it as Latin-1 text ("" if nothing came).
 */
async function exchange(
  port: number,
  request: Uint8Array | string,
  options: { closeWrite?: boolean; maxMs?: number; until?: RegExp } = {},
): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const bytes = typeof request === "string" ? encoder.encode(request) : request;
  const timer = setTimeout(() => conn.close(), options.maxMs ?? 5000);
  const chunks: Uint8Array[] = [];
  try {
    for (let written = 0; written < bytes.length;) {
      written += await conn.write(bytes.subarray(written));
    }
    if (options.closeWrite) await conn.closeWrite();
    const buffer = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      chunks.push(buffer.slice(0, n));
      if (options.until?.test(new TextDecoder("latin1").decode(concat(chunks)))) break;
    }
  } catch {
    // The server may close first (refused request) or the timer may: either ends the exchange.
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* already closed */ }
  }
  return new TextDecoder("latin1").decode(concat(chunks));
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

function statusOf(response: string): number | undefined {
  const match = /^HTTP\/1\.1 (\d{3})/.exec(response);
  return match ? Number(match[1]) : undefined;
}

async function stillServes(rotator: Rotator): Promise<void> {
  const response = await generate(rotator);
  assert.equal(response.status, 200, "the rotator still serves");
  await response.body?.cancel();
}

Deno.test("a client that disconnects during the body upload: nothing goes upstream, the rotator keeps serving", async () => {
  const { rotator, nextRequest } = await observed();
  try {
    const finished = nextRequest();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: portOf(rotator) });
    await conn.write(encoder.encode(
      head(GENERATE, ["content-type: application/json", "content-length: 1000000"]) +
        '{"contents":[{"parts":[{"text":"' + "x".repeat(4000),
    ));
    conn.close();
    const event = await finished;
    assert.equal(event.reason, "CLIENT_CLOSED");
    assert.equal(event.status, 499);
    assert.equal(rotator.mock.requests.length, 0, "a partial body is never forwarded");
    await stillServes(rotator);
  } finally {
    await rotator.close();
  }
});

Deno.test("a client that stops reading a large stream holds the upstream back: a bounded amount is buffered", async () => {
  const { rotator } = await observed();
  // 64 KiB events, 4 GiB in all: far more than any buffer on the way could hold.
  rotator.mock.setDefault({ type: "big_stream", chunkBytes: 64 * 1024, chunks: 65_536 });
  try {
    const cancelled = rotator.mock.nextCancel();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: portOf(rotator) });
    await conn.write(encoder.encode(
      head(GENERATE.replace(":generateContent", ":streamGenerateContent?alt=sse"), [
        "content-type: application/json",
        "content-length: 2",
      ]) + "{}",
    ));
    // Read the head and the first bytes of the stream, then stop reading.
    const buffer = new Uint8Array(16 * 1024);
    assert.notEqual(await conn.read(buffer), null);
    // No event says "every buffer on the way is full": wait until production stops growing.
    let last = -1;
    for (let stable = 0, i = 0; stable < 3 && i < 100; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      stable = rotator.mock.streamedBytes === last ? stable + 1 : 0;
      last = rotator.mock.streamedBytes;
    }
    const produced = rotator.mock.streamedBytes;
    assert.ok(produced > 0);
    assert.ok(
      produced < 64 * 1024 * 1024,
      `the upstream was read ahead by ${produced} bytes while the client read none`,
    );
    conn.close();
    await cancelled; // the client's departure reaches the upstream
  } finally {
    await rotator.close();
  }
});

Deno.test("a body over MAX_BODY_BYTES sent without a length (chunked) gets 413; nothing goes upstream", async () => {
  const { rotator } = await observed({ MAX_BODY_BYTES: "2048" });
  try {
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 4; i++) controller.enqueue(encoder.encode("x".repeat(1024)));
        controller.close();
      },
    });
    const response = await fetch(rotator.url + GENERATE, {
      method: "POST",
      headers: { "x-goog-api-key": TOKEN, "content-type": "application/json" },
      body,
    });
    assert.equal(response.status, 413);
    assert.equal((await response.json()).error.details[0].reason, "BODY_TOO_LARGE");
    assert.equal(rotator.mock.requests.length, 0);
    await stillServes(rotator);
  } finally {
    await rotator.close();
  }
});

Deno.test("an absurd Content-Length is refused with 413 at once, before any body is sent", async () => {
  const { rotator } = await observed();
  try {
    const response = await exchange(
      portOf(rotator),
      head(GENERATE, ["content-type: application/json", "content-length: 99999999999"]),
      { until: /MAX_BODY_BYTES/ },
    );
    assert.equal(statusOf(response), 413);
    assert.match(response, /MAX_BODY_BYTES/);
    assert.equal(rotator.mock.requests.length, 0);
  } finally {
    await rotator.close();
  }
});

Deno.test("a truncated body (the client half-closes early) is never forwarded as if complete", async () => {
  const { rotator, nextRequest } = await observed();
  try {
    const cases = [
      head(GENERATE, ["content-type: application/json", "content-length: 500"]) +
      '{"contents":[',
      head(GENERATE, ["content-type: application/json", "transfer-encoding: chunked"]) +
      'd\r\n{"contents":[\r\n',
    ];
    for (const request of cases) {
      const finished = nextRequest();
      await exchange(portOf(rotator), request, { closeWrite: true });
      const event = await finished;
      assert.equal(event.reason, "CLIENT_CLOSED", request);
    }
    assert.equal(rotator.mock.requests.length, 0);
    await stillServes(rotator);
  } finally {
    await rotator.close();
  }
});

Deno.test("malformed request targets get an answer (never a 500) and reach upstream only as Gemini paths", async () => {
  const { rotator } = await observed();
  try {
    const targets = [
      "/v1beta/models/%zz:generateContent",
      "/v1beta/models/gemini-2.5-flash:generateContent?%ff=%zz&key=",
      "/v1beta/models/%00:generateContent",
      "/v1beta/models/..%2f..%2f..%2fetc%2fpasswd",
      "http://evil.example/v1beta/models/gemini-2.5-flash:generateContent",
      "//evil.example/v1beta/models",
      "*",
      "v1beta/models",
      `/v1beta/models/${"a".repeat(16 * 1024)}:generateContent`,
      "/v1beta/models/gemini-2.5-flash:generateContent#fragment",
      "/v1beta/models/gemini 2.5:generateContent",
    ];
    for (const target of targets) {
      const response = await exchange(
        portOf(rotator),
        head(target, ["content-type: application/json", "content-length: 2"]) +
          "{}",
      );
      const status = statusOf(response);
      if (Deno.env.get("DEBUG_FAULTS")) console.log(status, target.slice(0, 80));
      assert.ok(status === undefined || (status < 500 && status !== 0), `${target}: ${status}`);
      assert.ok(!response.includes(A), `${target}: the key leaked into the answer`);
    }
    for (const request of rotator.mock.requests) {
      assert.match(request.path, /^\/v1beta\//, "only Gemini paths reach the upstream");
      assert.ok(!request.search.includes("key="), "the client's key parameter is dropped");
    }
    assert.ok(
      rotator.mock.requests.some((r) => r.path.endsWith("gemini-2.5-flash:generateContent")),
      "an absolute-form target is served from the configured upstream, whatever host it names",
    );
    await stillServes(rotator);
  } finally {
    await rotator.close();
  }
});

Deno.test("a model name with control or non-ASCII characters gets the upstream's answer, not a 500", async () => {
  const { rotator } = await observed();
  try {
    for (const [model, header] of [["a%00b", "a%00b"], ["g%C3%A9mini", "g%C3%A9mini"]]) {
      const response = await fetch(`${rotator.url}/v1beta/models/${model}:generateContent`, {
        method: "POST",
        headers: { "x-goog-api-key": TOKEN, "content-type": "application/json" },
        body: "{}",
      });
      assert.equal(response.status, 200, model);
      assert.equal(response.headers.get("x-rotator-model"), header, "percent-encoded");
      await response.body?.cancel();
    }
  } finally {
    await rotator.close();
  }
});

Deno.test("absurd headers get an answer or a refusal, never a crash, and never authenticate a mangled token", async () => {
  const { rotator } = await observed();
  const port = portOf(rotator);
  try {
    const many = Array.from({ length: 2000 }, (_, i) => `x-filler-${i}: ${"v".repeat(50)}`);
    const cases: { request: string | Uint8Array; expect?: (status?: number) => boolean }[] = [
      { request: head(GENERATE, [...many, "content-length: 2"]) + "{}" },
      {
        request: head(GENERATE, [`x-huge: ${"h".repeat(1024 * 1024)}`, "content-length: 2"]) + "{}",
      },
      { request: head(GENERATE, ["content-length: 2", "content-length: 3"]) + "{}" },
      { request: head(GENERATE, ["content-length: -1"]) },
      { request: head(GENERATE, ["content-length: 1e3"]) },
      { request: head(GENERATE, ["transfer-encoding: chunked", "content-length: 2"]) + "{}" },
      { request: head(GENERATE, ["content-length: 2", "bad header line"]) + "{}" },
      {
        // The token twice: joined as "token, token", which is not the token.
        request: head(GENERATE, [`x-goog-api-key: ${TOKEN}`, "content-length: 2"]) + "{}",
        expect: (status) => status === 401,
      },
      {
        request: head(GENERATE, ["authorization: Bearer", "content-length: 2"]).replace(
          `x-goog-api-key: ${TOKEN}\r\n`,
          "",
        ) + "{}",
        expect: (status) => status === 401,
      },
    ];
    for (const { request, expect } of cases) {
      const response = await exchange(port, request);
      const status = statusOf(response);
      const label = typeof request === "string" ? request.slice(0, 200) : "bytes";
      if (Deno.env.get("DEBUG_FAULTS")) console.log(status, label.slice(0, 120));
      assert.ok(status === undefined || status < 500, `${label}: ${status}`);
      if (expect) assert.ok(expect(status), `${label}: ${status}`);
    }
    assert.equal(rotator.mock.requests.length, 0, "none of these reached the upstream");
    await stillServes(rotator);
  } finally {
    await rotator.close();
  }
});

Deno.test("non-UTF-8 bytes in the request line and headers get an answer and leave the rotator serving", async () => {
  const { rotator } = await observed();
  const port = portOf(rotator);
  try {
    const withBytes = (before: string, bytes: number[], after: string) =>
      concat([encoder.encode(before), new Uint8Array(bytes), encoder.encode(after)]);
    const requests = [
      withBytes(
        "POST /v1beta/models/gem",
        [0xff, 0xfe, 0x80],
        `:generateContent HTTP/1.1\r\n` +
          `Host: x\r\nConnection: close\r\nx-goog-api-key: ${TOKEN}\r\ncontent-length: 2\r\n\r\n{}`,
      ),
      withBytes(
        `POST ${GENERATE} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nx-goog-api-key: ${TOKEN}\r\nx-goog-user-project: `,
        [0xc3, 0x28, 0xff],
        "\r\ncontent-length: 2\r\n\r\n{}",
      ),
      withBytes(
        `POST ${GENERATE} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nx-goog-api-key: `,
        [0xff, 0xfe],
        `${TOKEN}\r\ncontent-length: 2\r\n\r\n{}`,
      ),
    ];
    const statuses = [];
    for (const request of requests) {
      const status = statusOf(await exchange(port, request));
      if (Deno.env.get("DEBUG_FAULTS")) console.log(status);
      assert.ok(status === undefined || status < 500, `status ${status}`);
      statuses.push(status);
    }
    assert.notEqual(statuses[2], 200, "a token with stray bytes is not the token");
    await stillServes(rotator);
  } finally {
    await rotator.close();
  }
});

Deno.test("non-UTF-8 bytes in a request body reach Gemini byte for byte", async () => {
  const { rotator } = await observed();
  try {
    const bytes = new Uint8Array([0x7b, 0xff, 0xfe, 0x00, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0x7d]);
    for (const path of [GENERATE, "/v1beta/openai/chat/completions"]) {
      const response = await fetch(rotator.url + path, {
        method: "POST",
        headers: { "x-goog-api-key": TOKEN, "content-type": "application/json" },
        body: bytes,
      });
      await response.body?.cancel();
      assert.deepEqual(rotator.mock.requests.at(-1)!.bytes, bytes, path);
    }
  } finally {
    await rotator.close();
  }
});
