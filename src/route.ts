/**
 * Recognises Gemini API paths and what they name: the API surface, the model (quotas are per
 * model) and whether the answer streams. Anything not recognised here is never forwarded.
 *
 * Paths: https://ai.google.dev/api (native, `/v1beta/...`, `/v1/...`, `/upload/v1beta/files`),
 * https://ai.google.dev/gemini-api/docs/openai (`/v1beta/openai/...`).
 */

/** Which Gemini surface a request is for; decides how the pool key is sent. */
export type RouteKind = "native" | "openai" | "upload" | "live";

/** How the upstream answer is framed, which decides how a failure mid-answer is reported. */
export type StreamMode = "none" | "sse" | "json-array";

export interface GeminiRoute {
  readonly kind: RouteKind;
  /** API version segment, e.g. `v1beta`. */
  readonly version: string;
  /** The path after the version, decoded, e.g. `models/gemini-2.5-flash:generateContent`. */
  readonly resource: string;
  /** Model the request draws quota from, or "" when the path names none. */
  readonly model: string;
  /** RPC-style method after `:`, e.g. `generateContent`, or "". */
  readonly method: string;
  readonly stream: StreamMode;
  /** The path to request upstream (differs from the client's for the `/v1/...` OpenAI aliases). */
  readonly upstreamPath: string;
}

/** Model scope for requests that name no model (files, model lists). */
export const NO_MODEL = "";

const GEMINI_PATH = /^\/(?:(upload|download)\/)?(v1(?:alpha|beta)?\d*)(?:\/(.*))?$/;
const MODEL_RESOURCE = /^(models|tunedModels)\/([^/:]+)(?::([A-Za-z]+))?$/;

/** OpenAI-style paths under a bare `/v1/` that tools with a fixed "OpenAI base URL" call. */
const OPENAI_ALIAS = /^\/v1\/(chat\/completions|embeddings|models(?:\/[^/]+)?)$/;

/**
 * The Gemini route for a normalised URL path and its query, or undefined when the path is not a
 * Gemini API path (then nothing may be sent upstream).
 *
 * `/v1/chat/completions`, `/v1/embeddings` and `/v1/models` also answer as the OpenAI-compatible
 * surface. `/v1/models` is a native path too (@google/genai 3.x lists models there with
 * x-goog-api-key): it is taken as OpenAI's only when the client authenticates the OpenAI way
 * (a Bearer token and no x-goog-api-key or ?key=).
 */
export function matchGeminiRoute(
  pathname: string,
  search: URLSearchParams,
  headers?: Headers,
): GeminiRoute | undefined {
  const alias = OPENAI_ALIAS.exec(pathname);
  if (alias && (!alias[1].startsWith("models") || openAiStyleAuth(headers, search))) {
    const route = matchGeminiRoute(`/v1beta/openai/${alias[1]}`, search);
    return route && { ...route, upstreamPath: `/v1beta/openai/${alias[1]}` };
  }
  const match = GEMINI_PATH.exec(pathname);
  if (!match) return undefined;
  const [, prefix, version, rest = ""] = match;
  const resource = safeDecode(rest);
  if (resource === undefined || resource === "") return undefined;

  if (prefix) {
    return {
      kind: "upload",
      version,
      resource,
      model: NO_MODEL,
      method: "",
      stream: "none",
      upstreamPath: pathname,
    };
  }
  if (resource === "openai" || resource.startsWith("openai/")) {
    const openaiPath = resource.slice("openai/".length);
    const modelMatch = /^models\/(.+)$/.exec(openaiPath);
    return {
      kind: "openai",
      version,
      resource,
      model: modelMatch ? stripModelsPrefix(modelMatch[1]) : NO_MODEL,
      method: openaiPath,
      // Decided from the JSON body's `stream` field once it is read.
      stream: "none",
      upstreamPath: pathname,
    };
  }

  const modelMatch = MODEL_RESOURCE.exec(resource);
  const model = modelMatch
    ? (modelMatch[1] === "models" ? modelMatch[2] : `${modelMatch[1]}/${modelMatch[2]}`)
    : NO_MODEL;
  const method = modelMatch?.[3] ?? (resource.includes(":") ? resource.split(":").pop()! : "");
  const alt = search.get("alt") ?? search.get("$alt") ?? "";
  const stream: StreamMode = method === "streamGenerateContent"
    ? (alt.toLowerCase() === "sse" ? "sse" : "json-array")
    : "none";
  return { kind: "native", version, resource, model, method, stream, upstreamPath: pathname };
}

function openAiStyleAuth(headers: Headers | undefined, search: URLSearchParams): boolean {
  if (!headers) return false;
  return /^\s*Bearer\s/i.test(headers.get("authorization") ?? "") &&
    !headers.get("x-goog-api-key") && !search.has("key");
}

/** OpenAI-compatible bodies name the model as `gemini-x` or `models/gemini-x`. */
export function stripModelsPrefix(model: string): string {
  return model.startsWith("models/") ? model.slice("models/".length) : model;
}

/** The model and stream flag of an OpenAI-compatible JSON body, if it has them. */
export function openAiBodyFields(body: Uint8Array): { model?: string; stream: boolean } {
  if (body.byteLength === 0) return { stream: false };
  try {
    const parsed = JSON.parse(new TextDecoder().decode(body));
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      return { stream: false };
    }
    return {
      model: typeof parsed.model === "string" ? stripModelsPrefix(parsed.model) : undefined,
      stream: parsed.stream === true,
    };
  } catch {
    return { stream: false };
  }
}

function safeDecode(text: string): string | undefined {
  if (!text.includes("%")) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}
