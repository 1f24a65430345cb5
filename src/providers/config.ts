/**
 * Reads which fallback providers exist, and their keys, from the environment and the
 * PROVIDERS_FILE text: OpenRouter from OPENROUTER_* variables, any OpenAI-compatible provider
 * from the file. Every problem stops start-up with a ConfigError naming the variable or the
 * file entry and field; no message ever contains a key or a header value.
 *
 * PROVIDERS_FILE is a JSON array (docs/providers.md):
 * `[{"name", "baseUrl", "keys" | "keysEnv", "models": {"gemini-2.5-pro": "..."}, "headers"?}]`.
 */

import { ConfigError } from "../config.ts";
import { KeyListError, type KeySpec, parseKeyList } from "../key_list.ts";
import { openAiCompatible } from "./openai_compatible.ts";
import { OPENROUTER, openRouter, OPENROUTER_BASE_URL } from "./openrouter.ts";
import { bareModel, GEMINI_PROVIDER, type ModelMap, type Provider } from "./provider.ts";

/** A provider and the keys configured for it (fingerprinted later with toPoolKeys). */
export interface ConfiguredProvider {
  readonly provider: Provider;
  readonly keys: readonly KeySpec[];
  /** Blank or duplicate key entries that were dropped. */
  readonly droppedKeyEntries: number;
}

type Env = Readonly<Record<string, string | undefined>>;

const NAME = /^[a-z][a-z0-9_-]{0,31}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** A model name: printable, no spaces, no separators of the OPENROUTER_MODELS list. */
const MODEL_NAME = /^[\x21-\x7e]{1,200}$/;
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

/**
 * The fallback providers in the order they are tried: OpenRouter (when OPENROUTER_API_KEYS is
 * set), then PROVIDERS_FILE's entries in file order. `providersFileText` is the text of the file
 * PROVIDERS_FILE names, read by the entry point.
 */
export function parseProvidersConfig(
  env: Env,
  providersFileText?: string,
): readonly ConfiguredProvider[] {
  const providers: ConfiguredProvider[] = [];
  const fromEnv = openRouterFromEnv(env);
  if (fromEnv) providers.push(fromEnv);
  if (providersFileText !== undefined) {
    for (const entry of fileEntries(env, providersFileText)) {
      if (providers.some((p) => p.provider.name === entry.provider.name)) {
        throw new ConfigError(
          entry.provider.name === OPENROUTER
            ? `PROVIDERS_FILE has an entry named "openrouter" and OPENROUTER_API_KEYS is set too: ` +
              `configure OpenRouter in one place`
            : `PROVIDERS_FILE has two entries named "${entry.provider.name}": names must be unique`,
        );
      }
      providers.push(entry);
    }
  }
  checkKeysBelongToOneProvider(env, providers);
  return Object.freeze(providers);
}

function openRouterFromEnv(env: Env): ConfiguredProvider | undefined {
  const value = (name: string) => env[name]?.trim() || undefined;
  const { keys, dropped } = keyList("OPENROUTER_API_KEYS", env.OPENROUTER_API_KEYS);
  const settings = [
    "OPENROUTER_BASE_URL",
    "OPENROUTER_MODELS",
    "OPENROUTER_REFERER",
    "OPENROUTER_TITLE",
  ];
  if (keys.length === 0) {
    const stray = settings.find((name) => value(name) !== undefined);
    if (stray) {
      throw new ConfigError(
        `${stray} is set but OPENROUTER_API_KEYS is empty: set OpenRouter keys, or remove ${stray}`,
      );
    }
    return undefined;
  }
  const referer = value("OPENROUTER_REFERER");
  if (referer !== undefined && !/^https?:\/\/[^\s]+$/.test(referer)) {
    throw new ConfigError(
      "OPENROUTER_REFERER must be your site's URL (https://...), which OpenRouter credits",
    );
  }
  const title = value("OPENROUTER_TITLE");
  if (title !== undefined && !/^[\x20-\x7e]{1,100}$/.test(title)) {
    throw new ConfigError("OPENROUTER_TITLE must be up to 100 printable ASCII characters");
  }
  return {
    provider: openRouter({
      baseUrl: baseUrl(value("OPENROUTER_BASE_URL") ?? OPENROUTER_BASE_URL, "OPENROUTER_BASE_URL"),
      models: modelList(value("OPENROUTER_MODELS")),
      ...(referer ? { referer } : {}),
      ...(title ? { title } : {}),
    }),
    keys,
    droppedKeyEntries: dropped,
  };
}

/** OPENROUTER_MODELS: `gemini-2.5-pro=anthropic/claude-sonnet-4;*=openrouter/auto`. */
function modelList(text: string | undefined): ModelMap {
  const models: Record<string, string> = {};
  if (text === undefined) return models;
  text.split(/[;,\n]+/).map((e) => e.trim()).filter((e) => e !== "").forEach((entry, i) => {
    const [from, to, ...rest] = entry.split("=").map((s) => s.trim());
    if (to === undefined || rest.length > 0 || !MODEL_NAME.test(from) || !MODEL_NAME.test(to)) {
      throw new ConfigError(
        `OPENROUTER_MODELS entry ${i + 1} must be gemini-model=openrouter-model, for example ` +
          `gemini-2.5-pro=google/gemini-2.5-pro (entries separated by ";")`,
      );
    }
    models[bareModel(from)] = to;
  });
  return models;
}

function fileEntries(env: Env, text: string): ConfiguredProvider[] {
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

function keyList(variable: string, text: string | undefined): { keys: KeySpec[]; dropped: number } {
  try {
    return parseKeyList(variable, text);
  } catch (error) {
    if (error instanceof KeyListError) throw new ConfigError(error.message);
    throw error;
  }
}

/** A key listed for two providers (or for Gemini too) would be sent to the wrong host. */
function checkKeysBelongToOneProvider(env: Env, providers: readonly ConfiguredProvider[]): void {
  const owner = new Map<string, string>();
  let gemini: KeySpec[] = [];
  try {
    gemini = parseKeyList("API_KEYS", env.API_KEYS).keys;
  } catch { /* API_KEYS problems are reported by loadConfig */ }
  for (const key of gemini) owner.set(key.value, "API_KEYS (Gemini)");
  for (const { provider, keys } of providers) {
    for (const [index, key] of keys.entries()) {
      const other = owner.get(key.value);
      if (other !== undefined && other !== provider.name) {
        throw new ConfigError(
          `key ${index + 1} of provider ${provider.name} is also configured for ${other}: each ` +
            `key belongs to one provider, and is only ever sent to that provider's host`,
        );
      }
      owner.set(key.value, provider.name);
    }
  }
}
