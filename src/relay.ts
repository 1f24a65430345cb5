/**
 * Relays an upstream body to the client chunk by chunk, never buffering it, and makes its end
 * honest: an upstream that fails or stalls mid-stream ends the stream the way Gemini itself does
 * (a final `{"error":…}` event), never as a silent truncation. A client that goes away cancels
 * the upstream read, which aborts the upstream request.
 *
 * Mid-stream errors: Gemini sends `data: {"error":{…}}` on a 200 SSE stream
 * (../shared/gemini-api-facts.md §3.1); js-genai and py-genai raise on such a chunk.
 */

import { ChunkReader } from "./chunk_reader.ts";
import { errorBody, type GoogleStatus } from "./errors.ts";
import type { StreamMode } from "./route.ts";

export type RelayEnd = "complete" | "client_cancelled" | "upstream_error" | "idle_timeout";

export interface RelayResult {
  readonly end: RelayEnd;
  /** Bytes the client was sent (including any error event). */
  readonly bytes: number;
  /** The last bytes of the upstream body, where usage metadata sits. */
  readonly tail: Uint8Array;
  /** Epoch-free ms from relay start to the first upstream chunk, if any came. */
  readonly firstChunkMs?: number;
  readonly error?: string;
}

export interface RelayOptions {
  readonly mode: StreamMode;
  /** End the stream with an error event after this long without a chunk. */
  readonly idleTimeoutMs: number;
  readonly onEnd: (result: RelayResult) => void;
  /**
   * Free each chunk's memory as soon as the consumer asks for the next one, instead of leaving
   * it to the garbage collector (which lets tens of MiB of spent 64 KiB buffers pile up on a
   * fast stream). Only for a consumer that is done with a chunk once it reads the next: Deno.serve
   * is (it hands each chunk to Rust, which holds its own reference, before it reads on); a reader
   * that keeps chunks (`Response.text()`, `arrayBuffer()`, a tee) is not. Only buffers the relay
   * allocated itself are freed: a byte stream (every fetch body) is read into them; the chunks of
   * any other stream are passed on untouched.
   */
  readonly releaseChunks?: boolean;
}

const TAIL_BYTES = 4096;
const encoder = new TextEncoder();

/** Wraps `upstream` so its end is reported and failures reach the client as error events. */
export function relayBody(
  upstream: ReadableStream<Uint8Array>,
  options: RelayOptions,
): ReadableStream<Uint8Array> {
  const reader = new ChunkReader(upstream, options.releaseChunks === true);
  /** The chunk last handed on, freed once the consumer asks for the next. */
  let handedOn: Uint8Array | undefined;
  const release = () => {
    if (handedOn !== undefined) reader.release(handedOn);
    handedOn = undefined;
  };
  const started = performance.now();
  const tail = new TailBuffer(TAIL_BYTES);
  const frame = new FrameTracker(options.mode);
  let bytes = 0;
  let firstChunkMs: number | undefined;
  let lastChunkAt = started;
  let idleTimer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  let finished = false;

  const finish = (end: RelayEnd, error?: string) => {
    if (finished) return;
    finished = true;
    release();
    if (idleTimer !== undefined) clearTimeout(idleTimer);
    options.onEnd({
      end,
      bytes,
      tail: tail.bytes(),
      ...(firstChunkMs !== undefined ? { firstChunkMs } : {}),
      ...(error ? { error } : {}),
    });
  };

  // One timer per stream, re-armed only when it fires early: cheaper than one per chunk.
  const armIdle = (delay: number) => {
    idleTimer = setTimeout(() => {
      const idle = performance.now() - lastChunkAt;
      if (idle >= options.idleTimeoutMs) {
        timedOut = true;
        reader.cancel("idle timeout").catch(() => {});
      } else {
        armIdle(options.idleTimeoutMs - idle);
      }
    }, delay);
  };
  armIdle(options.idleTimeoutMs);

  const endWithError = (
    controller: ReadableStreamDefaultController<Uint8Array>,
    end: RelayEnd,
    code: number,
    status: GoogleStatus,
    message: string,
  ) => {
    const event = frame.errorEvent(code, status, message);
    if (event === undefined) {
      // A plain JSON body cut short cannot be completed: fail the transfer so the client sees
      // an incomplete response rather than a short one that looks whole.
      finish(end, message);
      controller.error(new Error(message));
      return;
    }
    bytes += event.byteLength;
    controller.enqueue(event);
    finish(end, message);
    controller.close();
  };

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let result: ReadableStreamReadResult<Uint8Array>;
      release(); // the consumer asks for more: it is done with the last chunk
      try {
        result = await reader.read();
      } catch (error) {
        if (finished) return;
        return endWithError(
          controller,
          "upstream_error",
          503,
          "UNAVAILABLE",
          `The Gemini API connection failed mid-response (${errorName(error)}); the answer ` +
            `above is incomplete. Retry the request.`,
        );
      }
      if (result.done) {
        if (finished) return;
        if (timedOut) {
          return endWithError(
            controller,
            "idle_timeout",
            504,
            "DEADLINE_EXCEEDED",
            `The Gemini API sent nothing for ${Math.round(options.idleTimeoutMs / 1000)} s; the ` +
              `answer above is incomplete. Retry the request.`,
          );
        }
        finish("complete");
        controller.close();
        return;
      }
      const chunk = result.value;
      const now = performance.now();
      firstChunkMs ??= now - started;
      lastChunkAt = now;
      bytes += chunk.byteLength;
      tail.push(chunk);
      frame.observe(chunk);
      controller.enqueue(chunk);
      if (reader.owned) handedOn = chunk;
    },
    cancel(reason) {
      finish("client_cancelled");
      return reader.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
}

function errorName(error: unknown): string {
  if (error instanceof Error) return error.name === "Error" ? error.message : error.name;
  return "connection closed";
}

/** Keeps the last `size` bytes seen. */
class TailBuffer {
  #buffer: Uint8Array;
  #length = 0;

  constructor(size: number) {
    this.#buffer = new Uint8Array(size);
  }

  push(chunk: Uint8Array): void {
    const size = this.#buffer.length;
    if (chunk.byteLength >= size) {
      this.#buffer.set(chunk.subarray(chunk.byteLength - size));
      this.#length = size;
      return;
    }
    const keep = Math.min(this.#length, size - chunk.byteLength);
    this.#buffer.copyWithin(0, this.#length - keep, this.#length);
    this.#buffer.set(chunk, keep);
    this.#length = keep + chunk.byteLength;
  }

  bytes(): Uint8Array {
    return this.#buffer.slice(0, this.#length);
  }
}

const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;

/** Knows enough of the framing to append a well-formed error event. */
class FrameTracker {
  #sawAny = false;
  #lastSignificant = 0;
  #endsAtEventBoundary = true;

  constructor(readonly mode: StreamMode) {}

  observe(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.#sawAny = true;
    if (this.mode === "sse") {
      const n = chunk.byteLength;
      const last = chunk[n - 1];
      const prev = n > 1 ? chunk[n - 2] : -1;
      this.#endsAtEventBoundary = last === 0x0a && (prev === 0x0a || prev === 0x0d) ||
        (last === 0x0d && prev === 0x0d);
    } else if (this.mode === "json-array") {
      for (let i = chunk.byteLength - 1; i >= 0; i--) {
        const byte = chunk[i];
        if (byte !== 0x20 && byte !== 0x0a && byte !== 0x0d && byte !== 0x09) {
          this.#lastSignificant = byte;
          break;
        }
      }
    }
  }

  /** The bytes that end this stream with an error, or undefined when the framing has none. */
  errorEvent(code: number, status: GoogleStatus, message: string): Uint8Array | undefined {
    const json = JSON.stringify(errorBody(code, status, message));
    if (this.mode === "sse") {
      return encoder.encode(`${this.#endsAtEventBoundary ? "" : "\r\n\r\n"}data: ${json}\r\n\r\n`);
    }
    if (this.mode === "json-array") {
      if (!this.#sawAny) return encoder.encode(`[${json}]`);
      if (this.#lastSignificant === CLOSE_BRACKET) return new Uint8Array();
      if (this.#lastSignificant === OPEN_BRACKET) return encoder.encode(`${json}]`);
      return encoder.encode(`${this.#lastSignificant === COMMA ? "" : ","}\r\n${json}]`);
    }
    return undefined;
  }
}
