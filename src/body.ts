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
/** The size of the Blob parts a large body is kept in. */
const PART_BYTES = 64 * 1024;
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
  // The body is copied into one staging buffer as it comes, and each read's buffer reused, so
  // a body sent a byte at a time costs what one sent in 64 KiB reads does. A body that outgrows
  // INSPECT_BYTES goes into Blob parts a staging buffer at a time: a 20 MiB upload holds about
  // 20 MiB, not that plus every spent chunk until the next collection.
  const reader = new ChunkReader(request.body);
  let stage = new Uint8Array(0);
  let staged = 0;
  let large: { parts: Blob[]; skeleton: SkeletonBuilder } | undefined;
  const flush = () => {
    large ??= { parts: [], skeleton: new SkeletonBuilder() };
    const bytes = stage.subarray(0, staged);
    // Parts of one read's size: sending a Blob reads each part whole into a new buffer.
    for (let at = 0; at < staged; at += PART_BYTES) {
      large.parts.push(new Blob([bytes.subarray(at, at + PART_BYTES)]));
    }
    large.skeleton.push(bytes);
    staged = 0;
  };
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
      for (let from = 0; from < value.byteLength;) {
        if (staged === stage.length) {
          if (stage.length < INSPECT_BYTES) stage = grown(stage, staged);
          else flush();
        }
        const n = Math.min(value.byteLength - from, stage.length - staged);
        stage.set(value.subarray(from, from + n), staged);
        staged += n;
        from += n;
      }
      reader.recycle(value);
    }
  } catch {
    return { ok: false, reason: "aborted", limit };
  }
  if (!large) return { ok: true, body: small(stage.slice(0, staged)) };
  if (staged > 0) flush();
  const skeleton = large.skeleton.bytes();
  const blob = new Blob(large.parts);
  return {
    ok: true,
    body: { size: total, payload: blob, inspectable: skeleton, text: () => blob.text() },
  };
}

/** `stage` with twice the room (64 KiB at first, INSPECT_BYTES at most), its bytes kept. */
function grown(stage: Uint8Array, length: number): Uint8Array<ArrayBuffer> {
  const next = new Uint8Array(Math.min(INSPECT_BYTES, Math.max(64 * 1024, stage.length * 2)));
  next.set(stage.subarray(0, length));
  return next;
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
  return new TextDecoder().decode(builder.bytes());
}

/**
 * skeletonOf, fed one chunk at a time (a chunk may be freed once pushed). It works on bytes:
 * base64 characters are ASCII and no byte of a multi-byte UTF-8 character is one, so a run of
 * them in the bytes is a run in the text, and the media is never decoded. What a chunk keeps is
 * gathered in a scratch buffer and copied out once per chunk: one allocation per word would make
 * a long prose body cost seconds and gigabytes.
 */
class SkeletonBuilder {
  /** What each chunk kept, one copy per chunk. */
  readonly #kept: Uint8Array<ArrayBuffer>[] = [];
  /** Where a chunk's kept bytes are gathered (grown to the largest chunk seen). */
  #scratch = new Uint8Array(0);
  #length = 0;
  /** Length of the run the bytes so far end in (0: they do not end in one). */
  #run = 0;
  /** That run's first bytes, while it is shorter than LONG_RUN (kept if it ends so). */
  readonly #head = new Uint8Array(LONG_RUN);

  push(chunk: Uint8Array): void {
    const n = chunk.byteLength;
    // A pending short run (< LONG_RUN) may be flushed into this chunk's bytes.
    if (this.#scratch.length < n + LONG_RUN) this.#scratch = new Uint8Array(n + LONG_RUN);
    this.#length = 0;
    let i = 0;
    while (i < n) {
      let j = i;
      if (this.#run > 0 || RUN_BYTE[chunk[i]] === 1) {
        while (j < n && RUN_BYTE[chunk[j]] === 1) j++;
        if (this.#run < LONG_RUN) {
          // Byte loops, not subarray() and set(): a view per word costs more than the copy.
          const head = this.#head;
          const end = Math.min(j, i + LONG_RUN - this.#run);
          for (let k = i, at = this.#run; k < end; k++) head[at++] = chunk[k];
        }
        this.#run += j - i;
        if (j < n) this.#endRun();
      } else {
        while (j < n && RUN_BYTE[chunk[j]] !== 1) j++;
        this.#gather(chunk, i, j);
      }
      i = j;
    }
    this.#flush();
  }

  /** The skeleton's bytes (UTF-8, as the body's), once every chunk is pushed. */
  bytes(): Uint8Array<ArrayBuffer> {
    this.#length = 0;
    this.#endRun();
    this.#flush();
    const bytes = new Uint8Array(this.#kept.reduce((sum, part) => sum + part.byteLength, 0));
    let at = 0;
    for (const part of this.#kept.splice(0)) {
      bytes.set(part, at);
      at += part.byteLength;
      part.buffer.transfer(0); // copied: its memory goes now (see chunk_reader.ts)
    }
    return bytes;
  }

  /** The run ended: a short one is kept, a long one (media) is dropped. */
  #endRun(): void {
    if (this.#run > 0 && this.#run < LONG_RUN) this.#gather(this.#head, 0, this.#run);
    this.#run = 0;
  }

  #gather(from: Uint8Array, start: number, end: number): void {
    if (this.#length + end - start > this.#scratch.length) {
      // Only text() gathers without push() having sized the scratch (a last short run).
      const grown = new Uint8Array(this.#length + end - start);
      grown.set(this.#scratch.subarray(0, this.#length));
      this.#scratch = grown;
    }
    const scratch = this.#scratch;
    let at = this.#length;
    for (let k = start; k < end; k++) scratch[at++] = from[k];
    this.#length = at;
  }

  #flush(): void {
    if (this.#length > 0) this.#kept.push(this.#scratch.slice(0, this.#length));
    this.#length = 0;
  }
}
