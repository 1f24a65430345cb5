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

/** Bytes of base64 and base64url (`A-Z a-z 0-9 + / = _ -`): 1, others 0. */
const RUN_BYTE = new Uint8Array(256);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-") {
  RUN_BYTE[c.charCodeAt(0)] = 1;
}

/**
 * The body's text with every run of at least LONG_RUN base64 characters removed. In JSON such
 * runs only occur inside strings, so what remains is still JSON, with the media emptied.
 */
export function skeletonOf(chunks: readonly Uint8Array[]): string {
  const builder = new SkeletonBuilder();
  for (const chunk of chunks) builder.push(chunk);
  return builder.text();
}

/**
 * skeletonOf, fed one chunk at a time (a chunk may be freed once pushed). It works on bytes:
 * base64 characters are ASCII and no byte of a multi-byte UTF-8 character is one, so a run of
 * them in the bytes is a run in the text, and the media is never decoded.
 */
class SkeletonBuilder {
  /** Copies of the bytes kept so far. */
  readonly #kept: Uint8Array[] = [];
  /** Length of the run the last chunk ended in (0: it did not end in one). */
  #run = 0;
  /** That run's bytes while it is still shorter than LONG_RUN (kept if it ends so). */
  #runHead: Uint8Array[] = [];

  push(chunk: Uint8Array): void {
    const n = chunk.byteLength;
    let i = 0;
    while (i < n) {
      let j = i;
      if (this.#run > 0 || RUN_BYTE[chunk[i]] === 1) {
        while (j < n && RUN_BYTE[chunk[j]] === 1) j++;
        if (this.#run < LONG_RUN) {
          if (this.#run + (j - i) < LONG_RUN) this.#runHead.push(chunk.slice(i, j));
          else this.#runHead = [];
        }
        this.#run += j - i;
        if (j < n) this.#endRun();
      } else {
        while (j < n && RUN_BYTE[chunk[j]] !== 1) j++;
        this.#kept.push(chunk.slice(i, j));
      }
      i = j;
    }
  }

  text(): string {
    this.#endRun();
    const bytes = new Uint8Array(this.#kept.reduce((sum, part) => sum + part.byteLength, 0));
    let at = 0;
    for (const part of this.#kept) {
      bytes.set(part, at);
      at += part.byteLength;
    }
    return new TextDecoder().decode(bytes);
  }

  /** The run ended: a short one is kept, a long one (media) is dropped. */
  #endRun(): void {
    if (this.#run > 0 && this.#run < LONG_RUN) this.#kept.push(...this.#runHead);
    this.#run = 0;
    this.#runHead = [];
  }
}
