/**
 * Translates a streamed chat-completions answer (server-sent `chat.completion.chunk` events
 * ending in `data: [DONE]`) into a streamed Gemini answer, chunk by chunk: SSE events
 * `data: {GenerateContentResponse}\r\n\r\n` (`alt=sse`) or the streamed JSON array (no `alt`).
 *
 * - Text deltas go out as they arrive, one Gemini chunk per event.
 * - Tool-call argument fragments are gathered per call (tool_call_fragments.ts) and go out as
 *   whole functionCall parts when the choice finishes, on any finish reason (some upstreams end
 *   tool calls with "stop", open-webui/computer#224), or at the end of the stream.
 * - The finishing chunk waits for the usage, which OpenAI sends in a last `choices: []` event
 *   and OpenRouter in the last event, so finishReason and usageMetadata arrive together as in
 *   Gemini's own last chunk.
 * - A provider error after the first byte (`{"error":…}`, or finish_reason "error", which
 *   OpenRouter sends on HTTP 200: https://openrouter.ai/docs/api/reference/errors-and-debugging)
 *   becomes Gemini's mid-stream error, a final `{"error":{code,message,status}}` event.
 * - A stream that ends with neither a finish reason nor `[DONE]` was cut short: it also ends
 *   with an error event, never as an answer that looks whole.
 *
 * Gemini framing: ../shared/gemini-api-facts.md §5 (no `[DONE]` on Gemini's side).
 */

import { googleError, providerError } from "./chat_error.ts";
import { contentText, finishReasonOf, usageMetadataOf } from "./chat_to_gemini.ts";
import type {
  FinishReason,
  GeminiCandidate,
  GenerateContentResponse,
  UsageMetadata,
} from "./gemini_types.ts";
import { SseDecoder } from "./sse.ts";
import { ToolCallFragments } from "./tool_call_fragments.ts";

/** How the Gemini client asked for the stream: `alt=sse`, or the JSON array without it. */
export type GeminiFraming = "sse" | "json-array";

/** How a translated stream ended. */
export type ChatStreamEnd = "complete" | "provider_error" | "truncated";

export interface ChatStreamResult {
  readonly end: ChatStreamEnd;
  readonly error?: string;
  readonly usage?: UsageMetadata;
}

export interface ChatStreamOptions {
  /** The modelVersion every chunk carries. */
  readonly model: string;
  readonly framing: GeminiFraming;
  /** The provider's name, for error messages. */
  readonly provider: string;
  /** Called once when the stream ends (not when the reader cancels). */
  readonly onEnd?: (result: ChatStreamResult) => void;
}

type Json = Record<string, unknown>;

interface ChoiceState {
  readonly calls: ToolCallFragments;
  /** The choice said why it finished. */
  finished: boolean;
  /** The finishing candidate, held until usage arrives or the stream ends. */
  final?: GeminiCandidate;
}

const encoder = new TextEncoder();

/** The translation as a push/end state machine: bytes in, Gemini bytes out. */
export class ChatStreamTranslator {
  readonly #options: ChatStreamOptions;
  readonly #sse = new SseDecoder();
  readonly #choices = new Map<number, ChoiceState>();
  #out = "";
  #emitted = 0;
  #responseId?: string;
  #usage?: UsageMetadata;
  #usageSent = false;
  #sawFinish = false;
  #result?: ChatStreamResult;

  constructor(options: ChatStreamOptions) {
    this.#options = options;
  }

  /** How the stream ended, once it has. */
  get result(): ChatStreamResult | undefined {
    return this.#result;
  }

  /** Feeds upstream bytes; returns the Gemini bytes they complete (maybe none). */
  push(bytes: Uint8Array): Uint8Array {
    for (const data of this.#sse.push(bytes)) this.#event(data);
    return this.#take();
  }

  /** The upstream ended: returns the last Gemini bytes. */
  end(): Uint8Array {
    for (const data of this.#sse.end()) this.#event(data);
    if (!this.#result) {
      if (this.#sawFinish) this.#complete(false);
      else {
        this.#fail(
          503,
          `The fallback provider ${this.#options.provider} ended its stream before the answer ` +
            `was complete. Retry the request.`,
          "truncated",
        );
      }
    }
    return this.#take();
  }

  #take(): Uint8Array {
    if (this.#out === "") return new Uint8Array();
    const bytes = encoder.encode(this.#out);
    this.#out = "";
    return bytes;
  }

  #event(data: string): void {
    if (this.#result) return;
    if (data.trim() === "[DONE]") return this.#complete(true);
    let event: Json;
    try {
      const parsed = JSON.parse(data);
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return;
      event = parsed;
    } catch {
      return;
    }
    if (typeof event.id === "string" && event.id !== "") this.#responseId ??= event.id;
    if (event.error !== undefined && event.error !== null) return this.#providerFailed(event.error);

    const texts = new Map<number, string>();
    const choices = Array.isArray(event.choices) ? event.choices : [];
    for (const [position, raw] of choices.entries()) {
      if (raw === null || typeof raw !== "object") continue;
      const choice = raw as Json;
      const index = typeof choice.index === "number" ? choice.index : position;
      const state = this.#state(index);
      const delta =
        (choice.delta !== null && typeof choice.delta === "object" ? choice.delta : {}) as Json;
      const text = contentText(delta.content) +
        (typeof delta.refusal === "string" ? delta.refusal : "");
      if (text !== "") texts.set(index, (texts.get(index) ?? "") + text);
      if (Array.isArray(delta.tool_calls)) state.calls.add(delta.tool_calls);
      if (choice.finish_reason === "error") {
        if (texts.size > 0) this.#emit({ candidates: textCandidates(texts) });
        return this.#providerFailed(choice.error ?? { message: "finish_reason error" });
      }
      const reason = finishReasonOf(choice.finish_reason);
      if (reason && !state.finished) {
        this.#sawFinish = true;
        state.finished = true;
        state.final = this.#finalCandidate(index, state, reason);
      }
    }
    if (texts.size > 0) this.#emit({ candidates: textCandidates(texts) });
    const usage = usageMetadataOf(event.usage);
    if (usage) {
      this.#usage = usage;
      // The usage closes the answer: send what finished, with it.
      if ([...this.#choices.values()].some((s) => s.final)) this.#sendFinals();
    }
  }

  #state(index: number): ChoiceState {
    let state = this.#choices.get(index);
    if (!state) {
      this.#choices.set(index, state = { calls: new ToolCallFragments(), finished: false });
    }
    return state;
  }

  /** The choice's last candidate: its gathered calls as whole parts, and its finish reason. */
  #finalCandidate(
    index: number,
    state: ChoiceState,
    reason: FinishReason | undefined,
  ): GeminiCandidate {
    const { parts, malformed } = state.calls.take();
    const finishReason = malformed ? "MALFORMED_FUNCTION_CALL" : reason;
    return {
      content: { parts: parts.length > 0 ? parts : [{ text: "" }], role: "model" },
      ...(finishReason ? { finishReason } : {}),
      index,
    };
  }

  #sendFinals(): void {
    const finals: GeminiCandidate[] = [];
    for (const [, state] of [...this.#choices.entries()].sort((a, b) => a[0] - b[0])) {
      if (state.final) {
        finals.push(state.final);
        state.final = undefined;
      }
    }
    const usage = this.#usageSent ? undefined : this.#usage;
    if (finals.length === 0 && !usage) return;
    if (usage) this.#usageSent = true;
    this.#emit({ candidates: finals, ...(usage ? { usageMetadata: usage } : {}) });
  }

  /**
   * The stream is over: with `[DONE]` (`done`), a choice that never said why it finished has
   * finished normally; without it, calls gathered so far still go out, with no reason.
   */
  #complete(done: boolean): void {
    for (const [index, state] of this.#choices) {
      if (state.finished) continue;
      if (done || state.calls.size > 0) {
        state.final = this.#finalCandidate(index, state, done ? "STOP" : undefined);
      }
    }
    if (done && this.#choices.size === 0) {
      // `[DONE]` with no choice at all: an empty answer, finished.
      this.#state(0).final = this.#finalCandidate(0, this.#state(0), "STOP");
    }
    this.#sendFinals();
    this.#close({ end: "complete", ...(this.#usage ? { usage: this.#usage } : {}) });
  }

  #providerFailed(error: unknown): void {
    const { code, message } = providerError(error, 500);
    this.#fail(
      code,
      `The fallback provider ${this.#options.provider} failed mid-answer: ${message}. The ` +
        `answer is incomplete; retry the request.`,
      "provider_error",
    );
  }

  /** Ends the stream with Gemini's mid-stream error event; unfinished calls are dropped. */
  #fail(code: number, message: string, end: ChatStreamEnd): void {
    for (const state of this.#choices.values()) state.calls.clear();
    this.#sendFinals();
    const body = googleError(code, message);
    this.#frame(JSON.stringify(body));
    this.#close({ end, error: body.error.message, ...(this.#usage ? { usage: this.#usage } : {}) });
  }

  #emit(chunk: Omit<GenerateContentResponse, "modelVersion">): void {
    const full: GenerateContentResponse = {
      ...chunk,
      modelVersion: this.#options.model,
      ...(this.#responseId ? { responseId: this.#responseId } : {}),
    };
    this.#frame(JSON.stringify(full));
  }

  #frame(json: string): void {
    if (this.#options.framing === "sse") this.#out += `data: ${json}\r\n\r\n`;
    else this.#out += `${this.#emitted === 0 ? "[" : ",\r\n"}${json}`;
    this.#emitted++;
  }

  #close(result: ChatStreamResult): void {
    if (this.#options.framing === "json-array") this.#out += this.#emitted === 0 ? "[]" : "]";
    this.#result = result;
    this.#options.onEnd?.(result);
  }
}

function textCandidates(texts: Map<number, string>): GeminiCandidate[] {
  return [...texts.entries()].sort((a, b) => a[0] - b[0]).map(([index, text]) => ({
    content: { parts: [{ text }], role: "model" },
    index,
  }));
}

/**
 * The translation as a TransformStream: pipe a provider's response body through it and send
 * the result to the Gemini client.
 */
export function chatStreamToGemini(
  options: ChatStreamOptions,
): TransformStream<Uint8Array, Uint8Array> {
  const translator = new ChatStreamTranslator(options);
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      const out = translator.push(chunk);
      if (out.byteLength > 0) controller.enqueue(out);
    },
    flush(controller) {
      const out = translator.end();
      if (out.byteLength > 0) controller.enqueue(out);
    },
  });
}
