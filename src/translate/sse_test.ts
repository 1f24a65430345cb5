import assert from "node:assert/strict";
import { SseDecoder } from "./sse.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

Deno.test("SseDecoder skips comments and non-data fields, and joins data lines", () => {
  const decoder = new SseDecoder();
  assert.deepEqual(
    decoder.push(bytes(": OPENROUTER PROCESSING\n\nevent: x\nid: 1\ndata: a\ndata:b\n\n")),
    ["a\nb"],
  );
});

Deno.test("SseDecoder keeps a UTF-8 character split across chunks whole", () => {
  const decoder = new SseDecoder();
  const all = bytes('data: {"t":"héllo"}\n\n');
  const cut = all.indexOf(0xc3) + 1;
  assert.deepEqual(decoder.push(all.slice(0, cut)), []);
  assert.deepEqual(decoder.push(all.slice(cut)), ['{"t":"héllo"}']);
});

Deno.test("SseDecoder dispatches an event left without its blank line at the end", () => {
  const decoder = new SseDecoder();
  assert.deepEqual(decoder.push(bytes("data: [DONE]")), []);
  assert.deepEqual(decoder.end(), ["[DONE]"]);
});
