/**
 * Translates a native Gemini generateContent request into a chat-completions request, so a
 * fallback provider can answer it; or says, in a sentence for the client, why it cannot be
 * carried faithfully (then the request is never sent to a fallback).
 *
 * Request shape: https://ai.google.dev/api/generate-content#request-body. Mapping follows the
 * same-direction translators BerriAI/litellm (`google_genai/adapters/transformation.py`) and
 * decolua/9router (`open-sse/translator/request/gemini-to-openai.js`); tool-call ids are
 * deterministic (tool_calls.ts).
 */

import type { ChatContentPart, ChatMessage, ChatRequest, ChatToolCall } from "./chat_types.ts";
import { checkSafetySettings, generationOptions, toolOptions } from "./gemini_options.ts";
import { arrayOf, fieldsOf, onlyKnown, Untranslatable } from "./json_fields.ts";
import { CallIds, checkToolPairing } from "./tool_calls.ts";

export type TranslationResult =
  | { readonly ok: true; readonly request: ChatRequest }
  | { readonly ok: false; readonly reason: string };

const BODY_FIELDS = new Set([
  "contents",
  "systemInstruction",
  "tools",
  "toolConfig",
  "generationConfig",
  "safetySettings",
  "cachedContent",
  "continuationToken",
  "store",
  // Billing labels, the service tier and a model repeated from the path change no answer.
  "labels",
  "serviceTier",
  "model",
]);

const CONTENT_FIELDS = new Set(["role", "parts"]);

/** Part fields (https://ai.google.dev/api/caching#Part); others are refused by name. */
const PART_FIELDS = new Set([
  "text",
  "inlineData",
  "fileData",
  "functionCall",
  "functionResponse",
  "executableCode",
  "codeExecutionResult",
  "toolCall",
  "toolResponse",
  "videoMetadata",
  "thought",
  // Gemini's own bookkeeping: a signature only Gemini can check, and hints about media.
  "thoughtSignature",
  "partMetadata",
  "mediaResolution",
  "mediaProcessing",
]);

/**
 * The chat-completions request for a Gemini request `body`, sent to `model` (the provider's
 * model name), streamed when `stream` is true.
 */
export function geminiToChat(body: unknown, model: string, stream: boolean): TranslationResult {
  try {
    return { ok: true, request: translate(body, model, stream) };
  } catch (error) {
    if (error instanceof Untranslatable) return { ok: false, reason: error.reason };
    throw error;
  }
}

function translate(body: unknown, model: string, stream: boolean): ChatRequest {
  const fields = fieldsOf(body, "the request body");
  onlyKnown(fields, BODY_FIELDS, "request");
  if (fields.get("cachedContent") !== undefined && fields.get("cachedContent") !== "") {
    throw new Untranslatable(
      "The request uses a Gemini context cache (cachedContent), which only the Gemini project " +
        "that created it can read.",
    );
  }
  if (fields.get("continuationToken") !== undefined) {
    throw new Untranslatable(
      "The request continues an earlier Gemini answer (continuationToken), which only Gemini " +
        "can resume.",
    );
  }
  if (fields.get("store") === true) {
    throw new Untranslatable(
      "The request asks Gemini to store the answer (store), which another provider cannot do.",
    );
  }
  checkSafetySettings(fields.get("safetySettings"));

  const messages: ChatMessage[] = [];
  const system = systemText(fields.get("systemInstruction"));
  if (system !== "") messages.push({ role: "system", content: system });
  messages.push(...conversation(fields.get("contents")));
  checkToolPairing(messages);

  return {
    model,
    messages,
    ...toolOptions(fields.get("tools"), fields.get("toolConfig")),
    ...generationOptions(fields.get("generationConfig")),
    ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
  };
}

/** systemInstruction: a Content of text parts (or, from hand-written bodies, a string). */
function systemText(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  const fields = fieldsOf(value, "systemInstruction");
  const texts: string[] = [];
  arrayOf(fields.get("parts") ?? [], "systemInstruction.parts").forEach((part, i) => {
    const where = `systemInstruction.parts[${i}]`;
    const p = fieldsOf(part, where);
    onlyKnown(p, PART_FIELDS, where);
    const text = p.get("text");
    if (typeof text !== "string" || [...p.keys()].some((k) => !SYSTEM_PART_FIELDS.has(k))) {
      throw new Untranslatable(
        `The system instruction holds something other than text (${where}); the translation ` +
          `to another provider carries a text-only system instruction.`,
      );
    }
    texts.push(text);
  });
  return texts.join("");
}

const SYSTEM_PART_FIELDS = new Set(["text", "thoughtSignature", "partMetadata"]);

/** contents -> messages: user/function turns to user and tool messages, model to assistant. */
function conversation(value: unknown): ChatMessage[] {
  const contents = arrayOf(value ?? [], "contents");
  if (contents.length === 0) {
    throw new Untranslatable("The request is malformed: contents is empty.");
  }
  const ids = new CallIds();
  const messages: ChatMessage[] = [];
  contents.forEach((content, i) => {
    const where = `contents[${i}]`;
    const fields = fieldsOf(content, where);
    onlyKnown(fields, CONTENT_FIELDS, where);
    const role = fields.get("role") ?? "user";
    const parts = arrayOf(fields.get("parts") ?? [], `${where}.parts`);
    if (role === "model") messages.push(...modelTurn(parts, where, ids));
    else if (role === "user" || role === "function") messages.push(...userTurn(parts, where, ids));
    else {
      throw new Untranslatable(
        `The request is malformed: ${where}.role is ${JSON.stringify(role).slice(0, 40)}, ` +
          `not "user" or "model".`,
      );
    }
  });
  return messages;
}

/** A part's fields, with Gemini's own thought summaries marked to skip. */
function partFields(part: unknown, where: string): Map<string, unknown> | undefined {
  const fields = fieldsOf(part, where);
  onlyKnown(fields, PART_FIELDS, where);
  // Thought summaries are the model's notes to the reader, not conversation input.
  if (fields.get("thought") === true) return undefined;
  for (
    const [name, what] of [
      ["fileData", "an uploaded file (fileData), which only Gemini can read"],
      ["executableCode", "code Gemini ran (executableCode), a tool other providers lack"],
      ["codeExecutionResult", "a code execution result (codeExecutionResult), a Gemini tool"],
      ["toolCall", "a Gemini built-in tool call (toolCall)"],
      ["toolResponse", "a Gemini built-in tool result (toolResponse)"],
      ["videoMetadata", "video (videoMetadata)"],
    ] as const
  ) {
    if (fields.has(name)) {
      throw new Untranslatable(
        `The request refers to ${what} at ${where}; the translation to another provider ` +
          `carries text, images and function calls only.`,
      );
    }
  }
  return fields;
}

function userTurn(parts: unknown[], where: string, ids: CallIds): ChatMessage[] {
  const toolMessages: ChatMessage[] = [];
  const content: ChatContentPart[] = [];
  parts.forEach((part, j) => {
    const at = `${where}.parts[${j}]`;
    const fields = partFields(part, at);
    if (!fields) return;
    const text = fields.get("text");
    if (typeof text === "string") {
      if (text !== "") content.push({ type: "text", text });
      return;
    }
    if (fields.has("inlineData")) {
      content.push(imagePart(fields.get("inlineData"), `${at}.inlineData`));
      return;
    }
    if (fields.has("functionResponse")) {
      toolMessages.push(toolMessage(fields.get("functionResponse"), `${at}.functionResponse`, ids));
      return;
    }
    if (fields.has("functionCall")) {
      throw new Untranslatable(
        `The request is malformed: a user turn holds a functionCall (${at}); only model turns ` +
          `call functions.`,
      );
    }
  });
  // Tool results must directly follow the assistant's calls; the rest of the turn comes after.
  const messages = [...toolMessages];
  if (content.length > 0) {
    const onlyText = content.every((p) => p.type === "text");
    messages.push({
      role: "user",
      content: onlyText ? content.map((p) => (p as { text: string }).text).join("") : content,
    });
  }
  return messages;
}

function modelTurn(parts: unknown[], where: string, ids: CallIds): ChatMessage[] {
  const texts: string[] = [];
  const calls: ChatToolCall[] = [];
  parts.forEach((part, j) => {
    const at = `${where}.parts[${j}]`;
    const fields = partFields(part, at);
    if (!fields) return;
    const text = fields.get("text");
    if (typeof text === "string") {
      texts.push(text);
      return;
    }
    if (fields.has("functionCall")) {
      calls.push(toolCall(fields.get("functionCall"), `${at}.functionCall`, ids));
      return;
    }
    if (fields.has("inlineData")) {
      throw new Untranslatable(
        `The conversation holds media the model produced (${at}.inlineData); chat completions ` +
          `carry only text in the assistant's turns.`,
      );
    }
    if (fields.has("functionResponse")) {
      throw new Untranslatable(
        `The request is malformed: a model turn holds a functionResponse (${at}); function ` +
          `results belong in user turns.`,
      );
    }
  });
  const text = texts.join("");
  if (text === "" && calls.length === 0) return [];
  return [{
    role: "assistant",
    content: text === "" ? null : text,
    ...(calls.length > 0 ? { tool_calls: calls } : {}),
  }];
}

function imagePart(value: unknown, where: string): ChatContentPart {
  const fields = fieldsOf(value, where);
  const mime = fields.get("mimeType");
  const data = fields.get("data");
  if (typeof mime !== "string" || typeof data !== "string") {
    throw new Untranslatable(
      `The request is malformed: ${where} needs a mimeType and base64 data.`,
    );
  }
  if (!/^image\/[a-z0-9.+-]+$/i.test(mime)) {
    throw new Untranslatable(
      `The request carries ${mime.slice(0, 60)} data (${where}); the translation to another ` +
        `provider carries text and images only.`,
    );
  }
  // Data URLs as OpenAI's vision input takes them (litellm, 9router `encodeDataUri`).
  return { type: "image_url", image_url: { url: `data:${mime.toLowerCase()};base64,${data}` } };
}

function toolCall(value: unknown, where: string, ids: CallIds): ChatToolCall {
  const fields = fieldsOf(value, where);
  const name = fields.get("name");
  if (typeof name !== "string" || name === "") {
    throw new Untranslatable(`The request is malformed: ${where} has no function name.`);
  }
  const args = fields.get("args") ?? {};
  if (args === null || typeof args !== "object" || Array.isArray(args)) {
    throw new Untranslatable(`The request is malformed: ${where}.args is not a JSON object.`);
  }
  return {
    id: ids.call(name, fields.get("id")),
    type: "function",
    function: { name, arguments: JSON.stringify(args) },
  };
}

function toolMessage(value: unknown, where: string, ids: CallIds): ChatMessage {
  const fields = fieldsOf(value, where);
  const name = fields.get("name");
  if (typeof name !== "string" || name === "") {
    throw new Untranslatable(`The request is malformed: ${where} has no function name.`);
  }
  if (Array.isArray(fields.get("parts")) && (fields.get("parts") as unknown[]).length > 0) {
    throw new Untranslatable(
      `The function result at ${where} carries media (parts); chat completions take text ` +
        `tool results only.`,
    );
  }
  return {
    role: "tool",
    tool_call_id: ids.response(name, fields.get("id"), where),
    // The whole response object, as litellm does: {"output": ...} or {"error": ...} alike.
    content: JSON.stringify(fields.get("response") ?? {}),
  };
}
