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
import { type KeySpec, parseKeyList } from "../key_list.ts";
import { OPENROUTER, openRouter, OPENROUTER_BASE_URL } from "./openrouter.ts";
import { bareModel, type ModelMap, type Provider } from "./provider.ts";
import { baseUrl, fileEntries, keyList, MODEL_NAME } from "./providers_file.ts";

/** A provider and the keys configured for it (fingerprinted later with toPoolKeys). */
export interface ConfiguredProvider {
  readonly provider: Provider;
  readonly keys: readonly KeySpec[];
  /** Blank or duplicate key entries that were dropped. */
  readonly droppedKeyEntries: number;
}

type Env = Readonly<Record<string, string | undefined>>;

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
