/**
 * Gathers the fragments of streamed tool calls into whole function calls, as Gemini sends them
 * (a functionCall part is never split, ../shared/gemini-api-facts.md §5).
 *
 * Chat streams send a call's name and id in its first delta and its arguments in pieces after,
 * keyed by `index`. Upstreams vary: Gemini's own OpenAI-compatible endpoint sends no `index`
 * (each delta a whole call with its id), and a second call has been seen reusing index 0 with
 * a new id (dyedd/lens#49). So a fragment joins the call with its `index`, else with its `id`,
 * else the call in progress; and a new id on an index that already holds a named call starts a
 * new call. (decolua/9router `openai-to-gemini.js` keys by index alone.)
 */

import { functionCallPart } from "./chat_to_gemini.ts";
import type { GeminiPart } from "./gemini_types.ts";

type Json = Record<string, unknown>;

interface CallInProgress {
  id?: string;
  name: string;
  args: string;
}

export class ToolCallFragments {
  readonly #calls: CallInProgress[] = [];
  readonly #byKey = new Map<string, CallInProgress>();
  #lastKey?: string;

  get size(): number {
    return this.#calls.length;
  }

  /** Adds one delta's `tool_calls` array. */
  add(deltas: readonly unknown[]): void {
    for (const raw of deltas) {
      if (raw === null || typeof raw !== "object") continue;
      const delta = raw as Json;
      const id = typeof delta.id === "string" && delta.id !== "" ? delta.id : undefined;
      const key = typeof delta.index === "number"
        ? `#${delta.index}`
        : id !== undefined
        ? `id:${id}`
        : this.#lastKey ?? "#0";
      let call = this.#byKey.get(key);
      if (call && id !== undefined && call.id !== undefined && call.id !== id && call.name) {
        call = undefined;
      }
      if (!call) {
        call = { name: "", args: "" };
        this.#calls.push(call);
        this.#byKey.set(key, call);
      }
      this.#lastKey = key;
      if (id !== undefined) call.id ??= id;
      const fn = (delta.function !== null && typeof delta.function === "object"
        ? delta.function
        : {}) as Json;
      if (typeof fn.name === "string" && fn.name !== "" && fn.name !== call.name) {
        call.name += fn.name;
      }
      if (typeof fn.arguments === "string") {
        call.args += fn.arguments;
      }
    }
  }

  /**
   * The gathered calls as whole functionCall parts, and whether any was malformed (arguments
   * that are not a JSON object); starts afresh.
   */
  take(): { parts: GeminiPart[]; malformed: boolean } {
    const parts: GeminiPart[] = [];
    let malformed = false;
    for (const call of this.#calls) {
      const part = functionCallPart(call.name, call.args);
      if (part) parts.push(part);
      else malformed = true;
    }
    this.clear();
    return { parts, malformed };
  }

  /** Drops what was gathered (a stream that failed: the calls are incomplete). */
  clear(): void {
    this.#calls.length = 0;
    this.#byKey.clear();
    this.#lastKey = undefined;
  }
}
