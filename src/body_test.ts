import assert from "node:assert/strict";
import { INSPECT_BYTES, readBody, skeletonOf } from "./body.ts";

const encoder = new TextEncoder();

function request(body: BodyInit, headers: HeadersInit = {}): Request {
  return new Request("http://x/v1beta/models/m:generateContent", { method: "POST", body, headers });
}

Deno.test("readBody() keeps a small body as bytes and sends those", async () => {
  const result = await readBody(request('{"a":1}'), 1024);
  assert.ok(result.ok);
  assert.equal(result.body.size, 7);
  assert.deepEqual(result.body.payload, encoder.encode('{"a":1}'));
  assert.equal(await result.body.text(), '{"a":1}');
});

Deno.test("readBody() refuses a body over the limit, declared or streamed", async () => {
  const declared = await readBody(request("x".repeat(10), { "content-length": "10" }), 5);
  assert.deepEqual(declared, { ok: false, reason: "too_large", limit: 5 });
  const stream = new Blob(["x".repeat(3000)]).stream();
  const streamed = await readBody(request(stream), 2048);
  assert.equal(streamed.ok, false);
});

Deno.test("readBody() sends a large body as one Blob and inspects a skeleton without the media", async () => {
  const image = "A".repeat(INSPECT_BYTES + 10_000);
  const json = JSON.stringify({
    contents: [{
      parts: [
        { inlineData: { mimeType: "image/png", data: image } },
        { fileData: { fileUri: "https://generativelanguage.googleapis.com/v1beta/files/abc123" } },
      ],
    }],
    model: "gemini-2.5-flash",
  });
  const result = await readBody(request(new Blob([json]).stream()), 20 * 1024 * 1024);
  assert.ok(result.ok);
  const { body } = result;
  assert.ok(body.payload instanceof Blob);
  assert.equal(body.size, encoder.encode(json).byteLength);
  assert.equal(await (body.payload as Blob).text(), json, "the attempt sends every byte");
  const skeleton = JSON.parse(new TextDecoder().decode(body.inspectable));
  assert.equal(skeleton.contents[0].parts[0].inlineData.data, "", "media emptied");
  assert.match(skeleton.contents[0].parts[1].fileData.fileUri, /files\/abc123$/);
  assert.equal(skeleton.model, "gemini-2.5-flash");
  assert.equal(await body.text(), json);
});

Deno.test("skeletonOf() removes long runs split across chunks and keeps short words", () => {
  const run = "B".repeat(3000);
  const text = `{"short":"abc","data":"${run}","after":"files/xyz"}`;
  for (const cut of [5, 20, 1000, 1500, 2999, 3020]) {
    const bytes = encoder.encode(text);
    const chunks = [bytes.subarray(0, cut), bytes.subarray(cut)];
    const skeleton = skeletonOf(chunks);
    assert.deepEqual(
      JSON.parse(skeleton),
      { short: "abc", data: "", after: "files/xyz" },
      `cut ${cut}`,
    );
  }
});

Deno.test("readBody() takes a body that arrives a byte at a time whole, without a buffer per byte", async () => {
  // 64 KiB in one-byte reads: a fresh 64 KiB buffer per read would hold 4 GiB.
  const sent = new Uint8Array(64 * 1024).map((_, i) => 0x41 + (i % 26));
  let at = 0;
  const stream = new ReadableStream({
    type: "bytes",
    pull(controller: ReadableByteStreamController) {
      if (at === sent.byteLength) {
        controller.close();
        controller.byobRequest?.respond(0);
        return;
      }
      controller.enqueue(sent.slice(at, ++at));
    },
  });
  const rssBefore = Deno.memoryUsage().rss;
  const result = await readBody(request(stream), 1024 * 1024);
  const grownMiB = (Deno.memoryUsage().rss - rssBefore) / (1024 * 1024);
  assert.ok(result.ok);
  assert.deepEqual(result.body.payload, sent);
  assert.ok(grownMiB < 100, `resident memory grew by ${grownMiB.toFixed(0)} MiB`);
});
