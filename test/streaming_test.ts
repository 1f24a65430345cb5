/**
 * Streaming through the rotator: chunks arrive as the upstream sends them, failures mid-stream
 * end the stream with an error event, and a client that leaves cancels the upstream request.
 */

import assert from "node:assert/strict";
import { startRotator, testKey, TOKEN } from "./harness.ts";

const A = testKey("alpha");
const B = testKey("bravo");

function stream(url: string, sse = true, signal?: AbortSignal): Promise<Response> {
  return fetch(
    `${url}/v1beta/models/gemini-2.5-flash:streamGenerateContent${sse ? "?alt=sse" : ""}`,
    {
      method: "POST",
      headers: { "x-goog-api-key": TOKEN, "content-type": "application/json" },
      body: JSON.stringify({ contents: [{ parts: [{ text: "Tell me a story" }] }] }),
      signal,
    },
  );
}

/** Reads a body, noting when each chunk arrived. */
async function readTimed(response: Response): Promise<{ text: string; times: number[] }> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const times: number[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    times.push(performance.now());
    text += decoder.decode(value, { stream: true });
  }
  return { text, times };
}

Deno.test("an SSE stream arrives chunk by chunk, as the upstream sends it", async () => {
  const rotator = await startRotator({ keys: [A] });
  rotator.mock.setDefault({ type: "slow_stream", chunks: 4, intervalMs: 120 });
  try {
    const response = await stream(rotator.url);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "text/event-stream");
    const { text, times } = await readTimed(response);
    const events = text.split("\r\n\r\n").filter(Boolean);
    assert.equal(events.length, 4);
    assert.ok(times.length >= 4, "one read per upstream chunk, not one buffered body");
    assert.ok(times.at(-1)! - times[0] >= 300, "the first chunk came well before the last");
    for (const event of events) assert.ok(JSON.parse(event.slice("data: ".length)).candidates);
  } finally {
    await rotator.close();
  }
});

Deno.test("a streamed JSON array (no alt=sse) passes through intact", async () => {
  const rotator = await startRotator({ keys: [A] });
  try {
    const response = await stream(rotator.url, false);
    assert.equal(response.status, 200);
    const items = JSON.parse(await response.text());
    assert.ok(Array.isArray(items));
    assert.equal(
      items.map((i: { candidates: { content: { parts: { text: string }[] } }[] }) =>
        i.candidates[0].content.parts[0].text
      ).join(""),
      "Hello from the mock",
    );
  } finally {
    await rotator.close();
  }
});

Deno.test("a 429 before the stream starts (as text/event-stream) fails over to another key", async () => {
  const rotator = await startRotator({ keys: [A, B] });
  rotator.mock.script(A, { type: "error", fixture: "rpm" });
  try {
    const response = await stream(rotator.url);
    assert.equal(response.status, 200);
    const { text } = await readTimed(response);
    assert.match(text, /Hello/);
    assert.deepEqual(rotator.mock.requests.map((r) => r.key), [A, B]);
  } finally {
    await rotator.close();
  }
});

Deno.test("an upstream reset mid-stream ends the SSE stream with an error event", async () => {
  const rotator = await startRotator({ keys: [A, B] });
  rotator.mock.setDefault({ type: "reset", chunks: 2 });
  try {
    const response = await stream(rotator.url);
    assert.equal(response.status, 200);
    const { text } = await readTimed(response);
    const events = text.split("\r\n\r\n").filter(Boolean).map((e) => JSON.parse(e.slice(6)));
    assert.equal(events.length, 3);
    assert.ok(events[0].candidates && events[1].candidates);
    assert.equal(events[2].error.code, 503);
    assert.match(events[2].error.message, /incomplete/);
    assert.equal(rotator.mock.requests.length, 1, "no second generation after bytes were sent");
  } finally {
    await rotator.close();
  }
});

Deno.test("an OpenAI-compatible stream cut mid-way ends with an error event too, chunk by chunk until then", async () => {
  const rotator = await startRotator({ keys: [A, B] });
  rotator.mock.setDefault({ type: "reset", chunks: 2 });
  try {
    const response = await fetch(`${rotator.url}/v1beta/openai/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: "gemini-2.5-flash",
        stream: true,
        messages: [{ role: "user", content: "Tell me a story" }],
      }),
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /text\/event-stream/);
    const { text, times } = await readTimed(response);
    assert.ok(times.length >= 2, "relayed as it came, not read whole");
    const events = text.split("\r\n\r\n").filter(Boolean).map((e) => JSON.parse(e.slice(6)));
    assert.equal(events.length, 3);
    assert.equal(events[2].error.code, 503);
    assert.match(events[2].error.message, /incomplete/);
    assert.equal(rotator.mock.requests.length, 1, "no second generation after bytes were sent");
  } finally {
    await rotator.close();
  }
});

Deno.test("an upstream reset mid-array ends the JSON array with an error element", async () => {
  const rotator = await startRotator({ keys: [A] });
  rotator.mock.setDefault({ type: "reset", chunks: 2 });
  try {
    const response = await stream(rotator.url, false);
    const items = JSON.parse(await response.text());
    assert.equal(items.length, 3);
    assert.equal(items[2].error.status, "UNAVAILABLE");
  } finally {
    await rotator.close();
  }
});

Deno.test("a stream that stalls is ended by the idle timeout with a clear error", async () => {
  const rotator = await startRotator({ keys: [A], env: { STREAM_IDLE_TIMEOUT_MS: "200" } });
  rotator.mock.setDefault({ type: "stall", chunks: 1 });
  try {
    const cancelled = rotator.mock.nextCancel();
    const response = await stream(rotator.url);
    const { text } = await readTimed(response);
    const events = text.split("\r\n\r\n").filter(Boolean).map((e) => JSON.parse(e.slice(6)));
    assert.equal(events.at(-1).error.status, "DEADLINE_EXCEEDED");
    await cancelled; // the stalled upstream request was cancelled, not left open
  } finally {
    await rotator.close();
  }
});

Deno.test("a client that disconnects mid-stream cancels the upstream request", async () => {
  const rotator = await startRotator({ keys: [A] });
  rotator.mock.setDefault({ type: "slow_stream", chunks: 50, intervalMs: 50 });
  try {
    const cancelled = rotator.mock.nextCancel();
    const controller = new AbortController();
    const response = await stream(rotator.url, true, controller.signal);
    const reader = response.body!.getReader();
    await reader.read();
    controller.abort();
    await cancelled;
    assert.equal(rotator.mock.cancelledStreams, 1);
  } finally {
    await rotator.close();
  }
});

Deno.test("a client that disconnects before the upstream answers aborts the upstream request", async () => {
  const rotator = await startRotator({ keys: [A] });
  rotator.mock.setDefault({ type: "hang" });
  try {
    const cancelled = rotator.mock.nextCancel();
    const arrived = rotator.mock.nextRequest();
    const controller = new AbortController();
    const pending = stream(rotator.url, true, controller.signal).catch((e) => e);
    await arrived;
    controller.abort();
    assert.ok((await pending) instanceof Error);
    await cancelled;
    assert.equal(rotator.mock.requests.length, 1, "not retried on another key");
  } finally {
    await rotator.close();
  }
});
