/**
 * Reads PROVIDERS_FILE: a JSON array describing OpenAI-compatible providers, each with a name,
 * a base URL, its keys (inline, or named by an environment variable) and a model-name map.
 * Errors name the entry and the field, never a key or a header value (docs/providers.md has
 * the schema and an example).
 */

import { ConfigError } from "../config.ts";
import { KeyListError, type KeySpec, parseKeyList } from "../key_list.ts";
import type { ConfiguredProvider } from "./config.ts";
import { openAiCompatible } from "./openai_compatible.ts";
import { OPENROUTER, openRouter, OPENROUTER_BASE_URL } from "./openrouter.ts";
import { bareModel, GEMINI_PROVIDER, type ModelMap } from "./provider.ts";

type Env = Readonly<Record<string, string | undefined>>;

const NAME = /^[a-z][a-z0-9_-]{0,31}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** A model name: printable, no spaces. */
export const MODEL_NAME = /^[\x21-\x7e]{1,200}$/;
const ENTRY_FIELDS = new Set(["name", "baseUrl", "keys", "keysEnv", "models", "headers"]);
/** Headers the rotator sets itself, or that would carry a second credential or break framing. */
const RESERVED_HEADERS = new Set([
  "authorization",
  "host",
  "content-length",
  "content-type",
  "accept",
  "accept-encoding",
  "connection",
  "transfer-encoding",
  "te",
  "upgrade",
  "keep-alive",
  "trailer",
  "cookie",
]);

export function fileEntries(env: Env, text: string): ConfiguredProvider[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    // The parser's message may quote the text around the error, keys included: give only
    // where it is.
    const where = /line \d+ column \d+|position \d+/.exec(String(error))?.[0];
    throw new ConfigError(
      `PROVIDERS_FILE is not valid JSON${where ? ` (at ${where})` : ""}: it must be a JSON ` +
        `array of {"name","baseUrl","keys","models"} objects`,
    );
  }
  if (!Array.isArray(parsed)) {
    throw new ConfigError(
      `PROVIDERS_FILE must hold a JSON array of {"name","baseUrl","keys","models"} objects`,
    );
  }
  return parsed.map((entry, index) => fileEntry(env, entry, index));
}

function fileEntry(env: Env, entry: unknown, index: number): ConfiguredProvider {
  let where = `PROVIDERS_FILE entry ${index + 1}`;
  if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
    throw new ConfigError(`${where} must be an object with "name", "baseUrl", "keys" and "models"`);
  }
  const record = entry as Record<string, unknown>;
  for (const field of Object.keys(record)) {
    if (!ENTRY_FIELDS.has(field)) {
      throw new ConfigError(
        `${where} has an unknown field "${field.slice(0, 40)}": use "name", "baseUrl", "keys" ` +
          `(or "keysEnv"), "models" and "headers"`,
      );
    }
  }
  const name = record.name;
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new ConfigError(
      `${where}: "name" must be up to 32 lower-case letters, digits, "-" or "_", starting with ` +
        `a letter`,
    );
  }
  where = `${where} ("${name}")`;
  if (name === GEMINI_PROVIDER) {
    throw new ConfigError(`${where}: the name "gemini" is the rotator's own; choose another`);
  }
  const { keys, dropped } = entryKeys(env, record, where);
  const models = entryModels(record.models, where, name === OPENROUTER);
  const headers = entryHeaders(record.headers, where);
  if (name === OPENROUTER) {
    const url = record.baseUrl === undefined
      ? OPENROUTER_BASE_URL
      : baseUrl(record.baseUrl, `${where} "baseUrl"`);
    return {
      provider: openRouter({ baseUrl: url, models, headers }),
      keys,
      droppedKeyEntries: dropped,
    };
  }
  if (record.baseUrl === undefined) {
    throw new ConfigError(
      `${where} needs a "baseUrl", such as https://api.groq.com/openai/v1 (the part before ` +
        `/chat/completions)`,
    );
  }
  return {
    provider: openAiCompatible({
      name,
      baseUrl: baseUrl(record.baseUrl, `${where} "baseUrl"`),
      models,
      headers,
    }),
    keys,
    droppedKeyEntries: dropped,
  };
}

function entryKeys(
  env: Env,
  record: Record<string, unknown>,
  where: string,
): { keys: KeySpec[]; dropped: number } {
  const { keys: inline, keysEnv } = record;
  if ((inline === undefined) === (keysEnv === undefined)) {
    throw new ConfigError(
      `${where} needs exactly one of "keys" (a list of API keys) and "keysEnv" (the name of an ` +
        `environment variable holding them)`,
    );
  }
  let result: { keys: KeySpec[]; dropped: number };
  if (keysEnv !== undefined) {
    if (typeof keysEnv !== "string" || !ENV_NAME.test(keysEnv)) {
      throw new ConfigError(`${where}: "keysEnv" must be an environment variable name`);
    }
    result = keyList(keysEnv, env[keysEnv]);
    if (result.keys.length === 0) {
      throw new ConfigError(`${where}: "keysEnv" names ${keysEnv}, which is empty or not set`);
    }
    return result;
  }
  if (typeof inline === "string") result = keyList(`${where} "keys"`, inline);
  else if (Array.isArray(inline)) result = keyList(`${where} "keys"`, JSON.stringify(inline));
  else {
    throw new ConfigError(`${where}: "keys" must be a list of API keys`);
  }
  if (result.keys.length === 0) throw new ConfigError(`${where}: "keys" is empty`);
  return result;
}

function entryModels(value: unknown, where: string, optional: boolean): ModelMap {
  if (value === undefined && optional) return {};
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ConfigError(
      `${where} needs "models", an object from Gemini model names to this provider's, for ` +
        `example {"gemini-2.5-flash": "llama-3.3-70b-versatile"} ("*" for any other model)`,
    );
  }
  const models: Record<string, string> = {};
  for (const [from, to] of Object.entries(value)) {
    if (!MODEL_NAME.test(from) || typeof to !== "string" || !MODEL_NAME.test(to)) {
      throw new ConfigError(
        `${where}: "models" entry "${from.slice(0, 60)}" must map a model name to a non-empty ` +
          `model name without spaces`,
      );
    }
    models[bareModel(from)] = to;
  }
  if (Object.keys(models).length === 0 && !optional) {
    throw new ConfigError(`${where}: "models" is empty, so this provider would never be used`);
  }
  return models;
}

function entryHeaders(value: unknown, where: string): Record<string, string> {
  if (value === undefined) return {};
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ConfigError(`${where}: "headers" must be an object of header names to values`);
  }
  const headers: Record<string, string> = {};
  for (const [name, v] of Object.entries(value)) {
    const lower = name.toLowerCase();
    if (RESERVED_HEADERS.has(lower) || lower.startsWith("x-rotator-")) {
      throw new ConfigError(
        `${where}: "headers" may not set ${name.slice(0, 40)}; the rotator sets it (the key goes ` +
          `in Authorization)`,
      );
    }
    try {
      if (typeof v !== "string") throw new TypeError();
      new Headers([[name, v]]);
    } catch {
      // The value may be a secret: name the header only.
      throw new ConfigError(
        `${where}: "headers" has an invalid name or value for "${name.slice(0, 40)}"`,
      );
    }
    headers[lower] = v;
  }
  return headers;
}

/**
 * An http(s) base URL (origin and optional path, no query, fragment or user name), without a
 * trailing slash. Plain http is for local servers and tests: keys travel in clear over it.
 */
export function baseUrl(raw: unknown, name: string): string {
  const example = "https://api.example.com/v1";
  if (typeof raw !== "string" || raw.trim() === "") {
    throw new ConfigError(`${name} must be a URL such as ${example}`);
  }
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new ConfigError(`${name} is not a URL: set it to a base URL such as ${example}`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new ConfigError(`${name} must use https:// (or http:// for a local server)`);
  }
  if (url.username || url.password) {
    throw new ConfigError(`${name} must not contain a user name or password: keys go in headers`);
  }
  if (url.search || url.hash || raw.includes("?") || raw.includes("#")) {
    throw new ConfigError(`${name} must not have a query or fragment: keys go in headers`);
  }
  const path = url.pathname.replace(/\/+$/, "");
  if (/\/chat\/completions$/.test(path)) {
    throw new ConfigError(
      `${name} must be the base URL, without /chat/completions (for example ${example})`,
    );
  }
  return `${url.origin}${path}`;
}

export function keyList(
  variable: string,
  text: string | undefined,
): { keys: KeySpec[]; dropped: number } {
  try {
    return parseKeyList(variable, text);
  } catch (error) {
    if (error instanceof KeyListError) throw new ConfigError(error.message);
    throw error;
  }
}
