/**
 * A fallback provider: another service, speaking OpenAI's chat-completions protocol, that can
 * answer when every Gemini key is spent. One file per provider holds its data and small
 * functions (base URL, auth header, model names, error table), as Portkey's
 * `src/providers/<name>/api.ts` do; none of them knows the proxy that calls it.
 *
 * A provider's keys live in their own KeyPool and cool down by the same rules as Gemini's, from
 * the Outcome its own `classify` reads out of its own error bodies.
 */

import type { Outcome } from "../classify.ts";
import { type Effect, type EffectContext, effectOf } from "../cooldown.ts";

/** The provider name Gemini itself answers under (the `x-rotator-provider` header). */
export const GEMINI_PROVIDER = "gemini";

export interface Provider {
  /** Lower-case name: the `x-rotator-provider` value and what logs and metrics call it. */
  readonly name: string;
  /** Origin plus path prefix, no trailing slash, e.g. `https://openrouter.ai/api/v1`. */
  readonly baseUrl: string;
  /** Headers sent with every request besides the key (attribution, organisation...). */
  readonly extraHeaders: Readonly<Record<string, string>>;
  /** The header(s) carrying `key`; sent only to `baseUrl`. */
  authHeaders(key: string): Record<string, string>;
  /**
   * The provider's model for a Gemini model name (with or without `models/`), or undefined when
   * this provider offers no substitute for it.
   */
  mapModel(geminiModel: string): string | undefined;
  /** What an answer means for the key that was used. Pure; `now` is epoch ms. */
  classify(status: number, headers: Headers, bodyText: string, now: number): Outcome;
}

/** Gemini model name -> provider model name; `"*"` stands for every other model. */
export type ModelMap = Readonly<Record<string, string>>;

/** `models/gemini-2.5-pro` -> `gemini-2.5-pro`. */
export function bareModel(model: string): string {
  return model.startsWith("models/") ? model.slice("models/".length) : model;
}

/** The mapped name for `model`, its `"*"` entry, or undefined. */
export function lookupModel(models: ModelMap, model: string): string | undefined {
  const bare = bareModel(model);
  return Object.hasOwn(models, bare) ? models[bare] : models["*"];
}

/**
 * The state change an outcome of a provider's key calls for: as for Gemini's keys, except that
 * a per-day limit ends when the provider says (OpenRouter resets at UTC midnight, not Pacific),
 * so the delay its classify worked out wins.
 */
export function providerEffect(outcome: Outcome, ctx: EffectContext): Effect {
  if (outcome.kind === "quota" && outcome.window === "day" && outcome.retryDelayMs !== undefined) {
    return {
      type: "cooldown",
      record: {
        project: ctx.project,
        model: ctx.model,
        until: ctx.now + Math.max(outcome.retryDelayMs, 1000),
        window: "day",
        reason: outcome.quotaId ?? "PER_DAY",
        setAt: ctx.now,
        keyId: ctx.keyId,
      },
    };
  }
  return effectOf(outcome, ctx);
}
