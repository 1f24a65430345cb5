/**
 * relayBody's chunk release against the real Deno.serve: it frees a chunk only once the server
 * has asked for the next, so a change in how the server writes chunks (on either Deno version
 * CI runs) shows here as a stream that arrives short or corrupted.
 */

import assert from "node:assert/strict";
import { relayBody, type RelayResult } from "./relay.ts";

/** An SSE body of `events` events of `size` bytes each, every event's bytes distinct. */
function sseBody(events: number, size: number): Uint8Array<ArrayBuffer> {
  const body = new Uint8Array(events * size);
  for (let e = 0; e < events; e++) {
    const event = body.subarray(e * size, (e + 1) * size);
    event.fill(0x61 + (e % 26));
    event.set([0x64, 0x61, 0x74, 0x61, 0x3a, 0x20]); // "data: "
    event.set([0x0d, 0x0a, 0x0d, 0x0a], size - 4);
  }
  return body;
}

/** Serves `body` in 64 KiB writes (a byte stream at the client, as every fetch body is). */
function serveBytes(body: Uint8Array<ArrayBuffer>) {
  return Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, () =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          for (let at = 0; at < body.byteLength; at += 65536) {
            controller.enqueue(body.slice(at, at + 65536));
          }
          controller.close();
        },
      }),
      // Closed after each answer: Deno 2.5's shutdown() otherwise waits out idle keep-alives.
      { headers: { connection: "close" } },
    ));
}

/** Byte equality (node:assert's deepEqual is slow on MiB of bytes on some Deno versions). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

function urlOf(server: Deno.HttpServer): string {
  return `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`;
}

Deno.test("releaseChunks: a stream relayed by Deno.serve arrives whole, its end reported", async () => {
  const body = sseBody(64, 40_000);
  const upstream = serveBytes(body);
  let result: RelayResult | undefined;
  const relay = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async () => {
    const answer = await fetch(urlOf(upstream));
    return new Response(
      relayBody(answer.body!, {
        mode: "sse",
        idleTimeoutMs: 10_000,
        releaseChunks: true,
        onEnd: (r) => result = r,
      }),
      { headers: { connection: "close" } },
    );
  });
  try {
    const received = new Uint8Array(await (await fetch(urlOf(relay))).arrayBuffer());
    assert.equal(received.byteLength, body.byteLength);
    assert.ok(sameBytes(received, body));
    assert.equal(result?.end, "complete");
    assert.equal(result?.bytes, body.byteLength);
    assert.deepEqual(result?.tail, body.subarray(body.byteLength - 4096));
  } finally {
    await relay.shutdown();
    await upstream.shutdown();
  }
});

Deno.test("releaseChunks leaves the chunks of a stream that is not a byte stream alone", async () => {
  const shared = new TextEncoder().encode("data: {}\r\n\r\n");
  let sent = 0;
  const upstream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent++ === 3) controller.close();
      else controller.enqueue(shared);
    },
  });
  const relayed = relayBody(upstream, {
    mode: "sse",
    idleTimeoutMs: 10_000,
    releaseChunks: true,
    onEnd: () => {},
  });
  for await (const _ of relayed) { /* read like a server: chunk by chunk */ }
  assert.equal(shared.byteLength, 12);
  assert.equal(shared.buffer.detached, false);
});

Deno.test("without releaseChunks a reader may keep every chunk (Response.arrayBuffer)", async () => {
  const body = sseBody(16, 40_000);
  const upstream = serveBytes(body);
  try {
    const answer = await fetch(urlOf(upstream));
    const relayed = relayBody(answer.body!, {
      mode: "sse",
      idleTimeoutMs: 10_000,
      onEnd: () => {},
    });
    assert.ok(sameBytes(new Uint8Array(await new Response(relayed).arrayBuffer()), body));
  } finally {
    await upstream.shutdown();
  }
});
