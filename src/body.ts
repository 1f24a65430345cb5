/**
 * Reads a client's request body once, up to a limit, so a failed attempt can send it again to
 * another key byte for byte. Larger bodies are refused before anything goes upstream.
 *
 * A small body is kept as bytes. A large one (inline images, audio) is kept as one Blob that
 * every attempt sends (Deno's fetch copies a Uint8Array body for each request, a Blob it does
 * not), plus a skeleton for inspection: the same JSON with every long base64 run emptied, so
 * looking for a model name or a file reference costs kilobytes, not megabytes.
 */

import { ChunkReader } from "./chunk_reader.ts";

export interface RequestBody {
  readonly size: number;
  /** The whole body, when it is at most INSPECT_BYTES. */
  readonly bytes?: Uint8Array<ArrayBuffer>;
  /** What each attempt sends (undefined: no body). */
  readonly payload: Uint8Array<ArrayBuffer> | Blob | undefined;
  /** The body (or, for a large one, its skeleton) to look at: model names, resources. */
  readonly inspectable: Uint8Array<ArrayBuffer>;
  /** The whole body as text, decoded on demand (fallbacks that rewrite it). */
  text(): Promise<string>;
}

export type BodyResult =
  | { readonly ok: true; readonly body: RequestBody }
  | { readonly ok: false; readonly reason: "too_large" | "aborted"; readonly limit: number };

/** Bodies up to this size are kept and inspected whole. */
export const INSPECT_BYTES = 1024 * 1024;
/** A run of base64 characters this long can only be inline data inside a JSON string. */
const LONG_RUN = 1024;

const EMPTY: RequestBody = {
  size: 0,
  payload: undefined,
  inspectable: new Uint8Array(),
  text: () => Promise.resolve(""),
};

/** The whole body, or why it could not be read (too large, or the client went away). */
export async function readBody(request: Request, limit: number): Promise<BodyResult> {
  const declared = request.headers.get("content-length");
  if (
    declared !== null && /^\d+$/.test(declared) &&
    Number(declared) <= Math.min(INSPECT_BYTES, limit)
  ) {
    // A small declared length: the runtime's own whole-body read is the fastest (and touching
    // `request.body` first would build a stream for nothing).
    try {
      return { ok: true, body: small(new Uint8Array(await request.arrayBuffer())) };
    } catch {
      return { ok: false, reason: "aborted", limit };
    }
  }
  if (request.body === null) return { ok: true, body: EMPTY };
  if (declared !== null && Number(declared) > limit) {
    await request.body.cancel().catch(() => {});
    return { ok: false, reason: "too_large", limit };
  }
  // Large bodies are kept in Blob parts as they come, each chunk freed once copied, so a 20 MiB
  // upload holds about 20 MiB, not that plus every spent chunk until the next collection.
  const reader = new ChunkReader(request.body);
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  let large: { parts: Blob[]; skeleton: SkeletonBuilder } | undefined;
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > limit) {
        await reader.cancel().catch(() => {});
        return { ok: false, reason: "too_large", limit };
      }
      chunks.push(value as Uint8Array<ArrayBuffer>);
      if (total <= INSPECT_BYTES) continue;
      large ??= { parts: [], skeleton: new SkeletonBuilder() };
      for (const chunk of chunks.splice(0)) {
        large.parts.push(new Blob([chunk]));
        large.skeleton.push(chunk);
        reader.release(chunk);
      }
    }
  } catch {
    return { ok: false, reason: "aborted", limit };
  }
  if (!large) {
    const bytes = concat(chunks, total);
    if (chunks.length > 1) chunks.forEach((chunk) => reader.release(chunk));
    return { ok: true, body: small(bytes) };
  }
  const skeleton = new TextEncoder().encode(large.skeleton.text());
  const blob = new Blob(large.parts);
  return {
    ok: true,
    body: { size: total, payload: blob, inspectable: skeleton, text: () => blob.text() },
  };
}

function small(bytes: Uint8Array<ArrayBuffer>): RequestBody {
  if (bytes.byteLength === 0) return EMPTY;
  return {
    size: bytes.byteLength,
    bytes,
    payload: bytes,
    inspectable: bytes,
    text: () => Promise.resolve(new TextDecoder().decode(bytes)),
  };
}

function concat(chunks: Uint8Array<ArrayBuffer>[], total: number): Uint8Array<ArrayBuffer> {
  if (chunks.length === 1) return chunks[0];
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

const RUN_AT_START = /^[A-Za-z0-9+/=_-]*/;

/** Whether a UTF-16 code unit is a base64 (or base64url) character. */
function isRunChar(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) ||
    c === 0x2b || c === 0x2f || c === 0x3d || c === 0x5f || c === 0x2d;
}

/** Length of the base64 run the text ends with (a backwards scan: `[...]*$` is quadratic). */
function trailingRun(text: string): number {
  let i = text.length;
  while (i > 0 && isRunChar(text.charCodeAt(i - 1))) i--;
  return text.length - i;
}
const LONG_RUNS = new RegExp(`[A-Za-z0-9+/=_-]{${LONG_RUN},}`, "g");

/**
 * The body's text with every run of at least LONG_RUN base64 characters removed. In JSON such
 * runs only occur inside strings, so what remains is still JSON, with the media emptied.
 */
export function skeletonOf(chunks: readonly Uint8Array[]): string {
  const builder = new SkeletonBuilder();
  for (const chunk of chunks) builder.push(chunk);
  return builder.text();
}

/** skeletonOf, fed one chunk at a time (a chunk may be freed once pushed). */
class SkeletonBuilder {
  readonly #decoder = new TextDecoder();
  readonly #out: string[] = [];
  #carry = "";
  #inLongRun = false;

  push(chunk: Uint8Array): void {
    this.#add(this.#decoder.decode(chunk, { stream: true }), false);
  }

  text(): string {
    this.#add(this.#decoder.decode(), true);
    return this.#out.join("");
  }

  #add(decoded: string, last: boolean): void {
    let text = decoded;
    if (this.#inLongRun) {
      const rest = RUN_AT_START.exec(text)![0];
      text = text.slice(rest.length);
      if (text.length === 0 && !last) return;
      this.#inLongRun = false;
    }
    text = this.#carry + text;
    this.#carry = "";
    if (!last) {
      // A run at the end may go on in the next chunk: decide when it ends.
      const trailing = trailingRun(text);
      if (trailing >= LONG_RUN) this.#inLongRun = true;
      else this.#carry = text.slice(text.length - trailing);
      text = text.slice(0, text.length - trailing);
    }
    this.#out.push(text.replace(LONG_RUNS, ""));
  }
}
