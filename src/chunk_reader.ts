/**
 * Reads a body chunk by chunk into buffers of its own, so whoever reads can free each chunk's
 * memory the moment it is done with it instead of leaving that to the garbage collector.
 *
 * Why: every chunk of a fetch or Deno.serve body is a fresh 64 KiB buffer outside V8's heap, and
 * V8 barely counts such memory when it decides to collect. Relaying a 100 MiB stream or reading
 * a 20 MiB upload left 25 to 60 MiB of spent buffers resident until the next collection; freed
 * as they are used, it is a few MiB (docs/performance.md).
 *
 * Only a byte stream (every fetch and Deno.serve body is one) is read into buffers this reader
 * allocates; the chunks of any other stream belong to someone else, and `release` and `recycle`
 * leave them.
 */

/** The size of each read: what Deno's own body streams read at a time. */
const READ_BYTES = 64 * 1024;

export class ChunkReader {
  readonly #byob: ReadableStreamBYOBReader | undefined;
  readonly #plain: ReadableStreamDefaultReader<Uint8Array> | undefined;
  /** A buffer handed back by `recycle`, read into next. */
  #spare: ArrayBuffer | undefined;

  /** `own: false` reads the stream's own chunks, and `release` does nothing. */
  constructor(stream: ReadableStream<Uint8Array>, own = true) {
    this.#byob = own ? byobReader(stream) : undefined;
    this.#plain = this.#byob ? undefined : stream.getReader();
  }

  /** Whether `release` frees chunks (the stream is a byte stream). */
  get owned(): boolean {
    return this.#byob !== undefined;
  }

  read(): Promise<ReadableStreamReadResult<Uint8Array>> {
    if (!this.#byob) return this.#plain!.read();
    const buffer = this.#spare ?? new ArrayBuffer(READ_BYTES);
    this.#spare = undefined;
    return this.#byob.read(new Uint8Array(buffer));
  }

  /**
   * The caller has copied `chunk` out: its buffer is read into next, so a body that arrives a
   * few bytes at a time does not cost a fresh 64 KiB buffer per read.
   */
  recycle(chunk: Uint8Array): void {
    if (this.#byob && chunk.buffer.byteLength === READ_BYTES) {
      this.#spare = chunk.buffer as ArrayBuffer;
    }
  }

  /**
   * Frees `chunk`'s memory now, when it is in a buffer this reader allocated. Nothing may look
   * at the chunk afterwards: it reads as empty.
   */
  release(chunk: Uint8Array): void {
    if (!this.#byob) return;
    const buffer = chunk.buffer as ArrayBuffer;
    // transfer(0) detaches the buffer: its memory goes now, not at the next collection.
    if (!buffer.detached) buffer.transfer(0);
  }

  cancel(reason?: unknown): Promise<void> {
    return (this.#byob ?? this.#plain!).cancel(reason);
  }
}

/** A BYOB reader when `stream` is a byte stream, else undefined (and the stream left unlocked). */
function byobReader(stream: ReadableStream<Uint8Array>): ReadableStreamBYOBReader | undefined {
  try {
    return stream.getReader({ mode: "byob" });
  } catch {
    return undefined;
  }
}
