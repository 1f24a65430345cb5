/**
 * Tool-call ids for a translated conversation, and the pairing rule chat completions enforce.
 *
 * Gemini's function calls need no id; chat completions pair every tool message with its call by
 * `tool_call_id`. Ids are made deterministic as in decolua/9router's `assignStableFunctionIds`:
 * the n-th call of function f without an id is `call_f_n`, and the n-th response to f answers
 * it (so parallel calls of one function stay apart). The same request thus gives the same ids
 * on every retry and every key. Ids Gemini gave (Gemini 3 sends them) are kept.
 */

import type { ChatMessage } from "./chat_types.ts";
import { Untranslatable } from "./json_fields.ts";

/** Pairs function calls with their responses by id, or by position per function name. */
export class CallIds {
  readonly #counts = new Map<string, number>();
  /** Calls not yet answered, per function name, in order. */
  readonly #open = new Map<string, string[]>();
  /** Ids made here (the call had none). */
  readonly #made = new Set<string>();

  call(name: string, id: unknown): string {
    const n = (this.#counts.get(name) ?? 0) + 1;
    this.#counts.set(name, n);
    const chosen = typeof id === "string" && id !== "" ? id : `call_${name}_${n}`;
    if (chosen !== id) this.#made.add(chosen);
    const open = this.#open.get(name) ?? [];
    open.push(chosen);
    this.#open.set(name, open);
    return chosen;
  }

  response(name: string, id: unknown, where: string): string {
    const open = this.#open.get(name) ?? [];
    let at = typeof id === "string" && id !== "" ? open.indexOf(id) : -1;
    // No call carries the response's id: the client made one up for its result and not for the
    // call (Gemini CLI makes up `<tool>__<tool>_<time>_<n>` when Gemini gave none, and also
    // writes it on the call; others may not). Pair by position, calls without an id first.
    if (at === -1) at = open.findIndex((candidate) => this.#made.has(candidate));
    if (at === -1) at = open.length > 0 ? 0 : -1;
    if (at === -1) {
      throw new Untranslatable(
        `The functionResponse for ${name} at ${where} answers no earlier functionCall; chat ` +
          `completions require every tool result to follow its call.`,
      );
    }
    return open.splice(at, 1)[0];
  }
}

/**
 * Chat completions reject a conversation where an assistant's tool calls are not all answered
 * by tool messages right after it, or a tool message answers no such call.
 */
export function checkToolPairing(messages: readonly ChatMessage[]): void {
  /** Calls still waiting for their result: id -> function name. */
  let open: Map<string, string> | undefined;
  for (const message of messages) {
    if (message.role === "tool") {
      if (!open?.delete(message.tool_call_id)) {
        throw new Untranslatable(
          "The conversation holds a function result that does not directly follow its call; " +
            "chat completions require results right after the model's calls.",
        );
      }
      continue;
    }
    if (open && open.size > 0) throw unanswered(open);
    open = message.role === "assistant" && message.tool_calls
      ? new Map(message.tool_calls.map((c) => [c.id, c.function.name]))
      : undefined;
  }
  if (open && open.size > 0) throw unanswered(open);
}

function unanswered(open: Map<string, string>): Untranslatable {
  const [name] = open.values();
  return new Untranslatable(
    `The conversation holds a call to ${name} with no functionResponse in the next turn; chat ` +
      `completions require every call to be answered before the conversation goes on.`,
  );
}
