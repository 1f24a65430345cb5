/**
 * Translates a chat-completions answer into Gemini's generateContent answer, so a native client
 * reads a fallback provider's reply as if Gemini had sent it. Also the pieces the streaming
 * translator shares: finish reasons, usage, and whole function calls from argument text.
 *
 * Mapping as BerriAI/litellm (`_map_finish_reason`, `_map_usage`) and decolua/9router
 * (`openai-to-gemini.js` reasonMap, `toUsageMetadata`): stop -> STOP, length -> MAX_TOKENS,
 * content_filter -> SAFETY, tool_calls -> STOP (Gemini ends a function-calling turn with STOP;
 * it has no tool-calls reason, https://ai.google.dev/api/generate-content#FinishReason).
 */

import type { ChatUsage } from "./chat_types.ts";
import type {
  FinishReason,
  GeminiCandidate,
  GeminiPart,
  GenerateContentResponse,
  UsageMetadata,
} from "./gemini_types.ts";

type Json = Record<string, unknown>;

const FINISH_REASONS: Record<string, FinishReason> = {
  stop: "STOP",
  length: "MAX_TOKENS",
  content_filter: "SAFETY",
  tool_calls: "STOP",
  function_call: "STOP",
};

/** The Gemini finish reason for a chat one; undefined while the choice is still going. */
export function finishReasonOf(reason: unknown): FinishReason | undefined {
  if (reason === null || reason === undefined) return undefined;
  return FINISH_REASONS[String(reason)] ?? "OTHER";
}

/**
 * usageMetadata from chat usage. Reasoning tokens are inside completion_tokens there, but apart
 * from candidatesTokenCount in Gemini (thoughtsTokenCount), so they move across.
 */
export function usageMetadataOf(usage: unknown): UsageMetadata | undefined {
  if (usage === null || typeof usage !== "object") return undefined;
  const u = usage as ChatUsage;
  const count = (n: unknown) => (typeof n === "number" && Number.isFinite(n) && n > 0 ? n : 0);
  const prompt = count(u.prompt_tokens);
  const completion = count(u.completion_tokens);
  const reasoning = Math.min(count(u.completion_tokens_details?.reasoning_tokens), completion);
  const cached = count(u.prompt_tokens_details?.cached_tokens);
  return {
    promptTokenCount: prompt,
    candidatesTokenCount: completion - reasoning,
    totalTokenCount: count(u.total_tokens) || prompt + completion,
    ...(reasoning > 0 ? { thoughtsTokenCount: reasoning } : {}),
    ...(cached > 0 ? { cachedContentTokenCount: cached } : {}),
  };
}

/**
 * A whole functionCall part from a name and its JSON argument text, or undefined when the text
 * is not a JSON object (Gemini's MALFORMED_FUNCTION_CALL).
 */
export function functionCallPart(name: string, argumentText: string): GeminiPart | undefined {
  if (name === "") return undefined;
  if (argumentText.trim() === "") return { functionCall: { name, args: {} } };
  try {
    const args = JSON.parse(argumentText);
    if (args === null || typeof args !== "object" || Array.isArray(args)) return undefined;
    return { functionCall: { name, args } };
  } catch {
    return undefined;
  }
}

/** The text of a message's content: a string, or an array of text parts. */
export function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content.map((part) =>
    part !== null && typeof part === "object" && typeof (part as Json).text === "string"
      ? (part as Json).text as string
      : ""
  ).join("");
}

/**
 * The Gemini answer for a chat-completions answer. `model` becomes modelVersion (the caller
 * decides which name the client should see). An answer without choices gives no candidates.
 */
export function chatToGemini(response: unknown, model: string): GenerateContentResponse {
  const body = (response !== null && typeof response === "object" ? response : {}) as Json;
  const choices = Array.isArray(body.choices) ? body.choices : [];
  const candidates: GeminiCandidate[] = choices
    .filter((c): c is Json => c !== null && typeof c === "object")
    .map((choice, position) => candidateOf(choice, position))
    .sort((a, b) => a.index - b.index);
  const usage = usageMetadataOf(body.usage);
  return {
    candidates,
    ...(usage ? { usageMetadata: usage } : {}),
    modelVersion: model,
    ...(typeof body.id === "string" ? { responseId: body.id } : {}),
  };
}

function candidateOf(choice: Json, position: number): GeminiCandidate {
  const message =
    (choice.message !== null && typeof choice.message === "object" ? choice.message : {}) as Json;
  const parts: GeminiPart[] = [];
  const text = contentText(message.content) ||
    (typeof message.refusal === "string" ? message.refusal : "");
  if (text !== "") parts.push({ text });
  let malformed = false;
  for (const call of Array.isArray(message.tool_calls) ? message.tool_calls : []) {
    const fn = (call as Json | null)?.function as Json | undefined;
    const part = functionCallPart(
      typeof fn?.name === "string" ? fn.name : "",
      typeof fn?.arguments === "string" ? fn.arguments : "",
    );
    if (part) parts.push(part);
    else malformed = true;
  }
  return {
    // Gemini never sends an empty parts list (9router, litellm: `[{"text": ""}]`).
    content: { parts: parts.length > 0 ? parts : [{ text: "" }], role: "model" },
    finishReason: malformed ? "MALFORMED_FUNCTION_CALL" : finishReasonOf(choice.finish_reason) ??
      "STOP",
    index: typeof choice.index === "number" ? choice.index : position,
  };
}
