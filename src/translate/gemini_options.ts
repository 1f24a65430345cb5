/**
 * The parts of a Gemini request besides its conversation: generationConfig, tools, toolConfig
 * and safetySettings, as chat-completions parameters. What has no faithful equivalent is refused
 * with a sentence; what only tunes Gemini itself is dropped (docs/providers.md lists both).
 *
 * Field tables: https://ai.google.dev/api/generate-content#generationconfig,
 * https://ai.google.dev/api/caching#Tool, https://platform.openai.com/docs/api-reference/chat.
 * Mapping as in BerriAI/litellm `google_genai/adapters/transformation.py` and
 * fan776783/Api-Conversion `doc/gemini_to_openai_conversion.md`.
 */

import type { ChatRequest, ChatResponseFormat, ChatTool, ChatToolChoice } from "./chat_types.ts";
import { arrayOf, fieldsOf, onlyKnown, Untranslatable } from "./json_fields.ts";
import { toJsonSchema } from "./schema.ts";

type Options = { -readonly [K in keyof ChatRequest]?: ChatRequest[K] };

/** Function names chat completions accept (https://platform.openai.com/docs/guides/function-calling). */
const FUNCTION_NAME = /^[A-Za-z0-9_-]{1,64}$/;

const GENERATION_FIELDS = new Set([
  "temperature",
  "topP",
  "topK",
  "candidateCount",
  "maxOutputTokens",
  "stopSequences",
  "presencePenalty",
  "frequencyPenalty",
  "seed",
  "responseMimeType",
  "responseSchema",
  "responseJsonSchema",
  "responseModalities",
  "responseLogprobs",
  "logprobs",
  "thinkingConfig",
  "mediaResolution",
  "enableEnhancedCivicAnswers",
  "speechConfig",
  "imageConfig",
  "audioTimestamp",
  "audioTranscriptionConfig",
]);

/** Gemini's built-in tools, by the field that enables each, as a user would name them. */
const BUILT_IN_TOOLS: Record<string, string> = {
  googleSearch: "Google Search grounding (googleSearch)",
  googleSearchRetrieval: "Google Search retrieval (googleSearchRetrieval)",
  codeExecution: "code execution (codeExecution)",
  urlContext: "URL context (urlContext)",
  fileSearch: "file search (fileSearch)",
  googleMaps: "Google Maps grounding (googleMaps)",
  computerUse: "computer use (computerUse)",
  mcpServers: "remote MCP servers (mcpServers)",
  retrieval: "retrieval (retrieval)",
  enterpriseWebSearch: "enterprise web search (enterpriseWebSearch)",
};

const DECLARATION_FIELDS = new Set([
  "name",
  "description",
  "parameters",
  "parametersJsonSchema",
  // The declared result shape and Live API scheduling do not change what the model is asked.
  "response",
  "responseJsonSchema",
  "behavior",
]);

/**
 * Thresholds that block nothing Gemini 2.5+ would not already let through (its default is
 * OFF): dropping them loses nothing. https://ai.google.dev/gemini-api/docs/safety-settings
 */
const NON_BLOCKING_THRESHOLDS = new Set(["BLOCK_NONE", "OFF", "HARM_BLOCK_THRESHOLD_UNSPECIFIED"]);

/** generationConfig as chat-completions parameters. */
export function generationOptions(value: unknown): Options {
  if (value === undefined || value === null) return {};
  const where = "generationConfig";
  const config = fieldsOf(value, where);
  onlyKnown(config, GENERATION_FIELDS, where);
  const out: Options = {};
  const number = (name: string): number | undefined => {
    const v = config.get(name);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new Untranslatable(`The request is malformed: ${where}.${name} is not a number.`);
    }
    return v;
  };
  const temperature = number("temperature");
  if (temperature !== undefined) out.temperature = temperature;
  const topP = number("topP");
  if (topP !== undefined) out.top_p = topP;
  const maxTokens = number("maxOutputTokens");
  if (maxTokens !== undefined) out.max_tokens = maxTokens;
  const candidates = number("candidateCount");
  if (candidates !== undefined && candidates !== 1) out.n = candidates;
  const presence = number("presencePenalty");
  if (presence !== undefined) out.presence_penalty = presence;
  const frequency = number("frequencyPenalty");
  if (frequency !== undefined) out.frequency_penalty = frequency;
  const seed = number("seed");
  if (seed !== undefined) out.seed = seed;
  // topK has no chat-completions equivalent; it narrows sampling and changes no contract.
  number("topK");

  const stop = config.get("stopSequences");
  if (stop !== undefined && stop !== null) {
    const list = arrayOf(stop, `${where}.stopSequences`);
    if (!list.every((s) => typeof s === "string")) {
      throw new Untranslatable(
        `The request is malformed: ${where}.stopSequences must be a list of strings.`,
      );
    }
    if (list.length > 0) out.stop = list as string[];
  }

  const format = responseFormat(config);
  if (format) out.response_format = format;

  const modalities = config.get("responseModalities");
  if (Array.isArray(modalities)) {
    const other = modalities.find((m) => String(m).toUpperCase() !== "TEXT");
    if (other !== undefined) {
      throw new Untranslatable(
        `The request asks for ${String(other)} output (generationConfig.responseModalities); ` +
          `the translation to another provider carries text only.`,
      );
    }
  }
  if (config.get("responseLogprobs") === true || config.get("logprobs") !== undefined) {
    throw new Untranslatable(
      "The request asks for token log probabilities (generationConfig.responseLogprobs), " +
        "which the translation to another provider does not bring back.",
    );
  }
  for (
    const [name, what] of [
      ["speechConfig", "spoken audio"],
      ["imageConfig", "generated images"],
      ["audioTimestamp", "audio timestamps"],
      ["audioTranscriptionConfig", "audio transcription"],
    ] as const
  ) {
    if (config.get(name) !== undefined && config.get(name) !== null) {
      throw new Untranslatable(
        `The request asks for ${what} (generationConfig.${name}), which the translation to ` +
          `another provider does not carry.`,
      );
    }
  }
  // thinkingConfig, mediaResolution and enableEnhancedCivicAnswers tune Gemini's own model:
  // the provider's model thinks as it does, and thought summaries are only ever "when
  // available" (https://ai.google.dev/gemini-api/docs/thinking).
  return out;
}

/** JSON mode: application/json alone, or with a schema (Gemini Schema or JSON Schema). */
function responseFormat(config: Map<string, unknown>): ChatResponseFormat | undefined {
  const mime = config.get("responseMimeType");
  const geminiSchema = config.get("responseSchema");
  const jsonSchema = config.get("responseJsonSchema");
  if (mime !== undefined && mime !== null && typeof mime !== "string") {
    throw new Untranslatable(
      "The request is malformed: generationConfig.responseMimeType is not a string.",
    );
  }
  const type = (mime ?? "").toLowerCase();
  if (type !== "" && type !== "text/plain" && type !== "application/json") {
    throw new Untranslatable(
      `The request asks for ${mime} output (generationConfig.responseMimeType); chat ` +
        `completions offer only text and JSON.`,
    );
  }
  const schema = jsonSchema ?? (geminiSchema == null ? undefined : toJsonSchema(geminiSchema));
  if (schema !== undefined && schema !== null) {
    if (typeof schema !== "object" || Array.isArray(schema)) {
      throw new Untranslatable(
        "The request is malformed: generationConfig.responseSchema is not a JSON object.",
      );
    }
    return {
      type: "json_schema",
      json_schema: { name: "response", schema: schema as Record<string, unknown> },
    };
  }
  return type === "application/json" ? { type: "json_object" } : undefined;
}

/** tools[].functionDeclarations as chat tools; any built-in Gemini tool is refused. */
export function toolOptions(toolsValue: unknown, toolConfigValue: unknown): Options {
  if (toolsValue === undefined || toolsValue === null) return {};
  const tools: ChatTool[] = [];
  arrayOf(toolsValue, "tools").forEach((tool, i) => {
    const fields = fieldsOf(tool, `tools[${i}]`);
    for (const [name, value] of fields) {
      if (name === "functionDeclarations") {
        arrayOf(value, `tools[${i}].functionDeclarations`).forEach((declaration, j) => {
          tools.push(chatTool(declaration, `tools[${i}].functionDeclarations[${j}]`));
        });
        continue;
      }
      const what = BUILT_IN_TOOLS[name] ?? `the ${name} tool`;
      throw new Untranslatable(
        `The request uses Gemini's built-in ${what}, which other providers do not offer.`,
      );
    }
  });
  if (tools.length === 0) return {};
  const choice = toolChoice(toolConfigValue);
  const allowed = choice.allowed;
  const offered = allowed ? tools.filter((t) => allowed.includes(t.function.name)) : tools;
  if (offered.length === 0) return {};
  let toolChoiceOut: ChatToolChoice | undefined = choice.mode;
  if (choice.mode === "required" && allowed?.length === 1 && offered.length === 1) {
    toolChoiceOut = { type: "function", function: { name: offered[0].function.name } };
  }
  return { tools: offered, ...(toolChoiceOut ? { tool_choice: toolChoiceOut } : {}) };
}

function chatTool(value: unknown, where: string): ChatTool {
  const fields = fieldsOf(value, where);
  onlyKnown(fields, DECLARATION_FIELDS, where);
  const name = fields.get("name");
  if (typeof name !== "string" || !FUNCTION_NAME.test(name)) {
    throw new Untranslatable(
      `The function name at ${where}.name is not one chat completions accept (letters, ` +
        `digits, "_" and "-", at most 64).`,
    );
  }
  const description = fields.get("description");
  const jsonSchema = fields.get("parametersJsonSchema");
  const geminiSchema = fields.get("parameters");
  const parameters = jsonSchema ?? (geminiSchema == null ? undefined : toJsonSchema(geminiSchema));
  return {
    type: "function",
    function: {
      name,
      ...(typeof description === "string" && description !== "" ? { description } : {}),
      // Some providers reject a function without a parameters object; none means none.
      parameters: parameters !== null && typeof parameters === "object"
        ? parameters as Record<string, unknown>
        : { type: "object", properties: {} },
    },
  };
}

/**
 * toolConfig.functionCallingConfig: AUTO -> auto, ANY -> required, NONE -> none (litellm's
 * mode_mapping); VALIDATED (text or a schema-valid call) is closest to auto.
 */
function toolChoice(value: unknown): { mode?: "auto" | "none" | "required"; allowed?: string[] } {
  if (value === undefined || value === null) return {};
  const config = fieldsOf(value, "toolConfig");
  const calling = config.get("functionCallingConfig");
  if (calling === undefined || calling === null) return {};
  const fields = fieldsOf(calling, "toolConfig.functionCallingConfig");
  const mode = String(fields.get("mode") ?? "AUTO").toUpperCase();
  const names = fields.get("allowedFunctionNames");
  const allowed = Array.isArray(names) && names.length > 0
    ? names.filter((n): n is string => typeof n === "string")
    : undefined;
  switch (mode) {
    case "ANY":
      return { mode: "required", ...(allowed ? { allowed } : {}) };
    case "NONE":
      return { mode: "none" };
    case "AUTO":
    case "MODE_UNSPECIFIED":
    case "VALIDATED":
      return { mode: "auto", ...(allowed ? { allowed } : {}) };
    default:
      throw new Untranslatable(
        `The request's toolConfig.functionCallingConfig.mode ${mode.slice(0, 40)} is not one ` +
          `the translation to another provider knows.`,
      );
  }
}

/**
 * safetySettings: dropped when they block nothing; refused when they ask for blocking, since
 * another provider cannot apply Gemini's categories and thresholds.
 */
export function checkSafetySettings(value: unknown): void {
  if (value === undefined || value === null) return;
  arrayOf(value, "safetySettings").forEach((setting, i) => {
    const fields = fieldsOf(setting, `safetySettings[${i}]`);
    const threshold = String(fields.get("threshold") ?? "HARM_BLOCK_THRESHOLD_UNSPECIFIED");
    if (!NON_BLOCKING_THRESHOLDS.has(threshold.toUpperCase())) {
      throw new Untranslatable(
        `The request asks Gemini to block ${String(fields.get("category") ?? "content")} at ` +
          `${threshold} (safetySettings); another provider cannot apply Gemini's safety ` +
          `thresholds.`,
      );
    }
  });
}
