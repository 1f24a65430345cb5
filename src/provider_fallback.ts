/**
 * The last resort before a 429: another provider (OpenRouter, or any OpenAI-compatible service
 * from PROVIDERS_FILE) answers a chat request when every Gemini key is spent. OpenAI-surface
 * requests go as they are with the model name mapped; native generateContent requests are
 * translated to chat completions and the answer (whole or streamed) back to Gemini's shape. A
 * request the translation cannot carry faithfully is never sent: the client gets the 429 with
 * the reason. Each provider's keys rotate and cool down in their own pool, by that provider's
 * own error table; a provider's key goes only to its own base URL (providers/request.ts).
 */

import type { Plan } from "./attempts.ts";
import type { PoolKey } from "./keys.ts";
import { describeError } from "./log.ts";
import type { KeyPool } from "./pool.ts";
import { type Provider, providerEffect } from "./providers/provider.ts";
import { providerRequest, withProviderModel } from "./providers/request.ts";
import type { ProxyContext } from "./proxy.ts";
import { relayBody } from "./relay.ts";
import type { Trace } from "./trace.ts";
import { providerErrorBody } from "./translate/chat_error.ts";
import { chatStreamToGemini } from "./translate/chat_stream.ts";
import { chatToGemini } from "./translate/chat_to_gemini.ts";
import { geminiToChat } from "./translate/gemini_to_chat.ts";
import { headerSafe } from "./upstream.ts";

/** A provider and its keys. */
export interface ProviderPool {
  readonly provider: Provider;
  readonly pool: KeyPool;
}

/** The provider's answer, or why no provider was asked or could answer. */
export type FallbackResult =
  | { readonly response: Response; readonly declined?: undefined }
  | { readonly declined: string; readonly response?: undefined };

const NATIVE_METHODS = new Set(["generateContent", "streamGenerateContent"]);

/** Tries the providers in order for a request every Gemini key is spent for. */
export async function providerFallback(
  plan: Plan,
  trace: Trace,
  providers: readonly ProviderPool[],
  ctx: ProxyContext,
): Promise<FallbackResult> {
  if (providers.length === 0) return { declined: "" };
  const { route } = plan;
  const native = route.kind === "native" && NATIVE_METHODS.has(route.method);
  const openai = route.kind === "openai" && route.method === "chat/completions";
  if (!native && !openai) {
    return { declined: "only chat and generateContent requests can go to another provider" };
  }
  if (plan.pinned || plan.names.length > 0) {
    return { declined: "the request names files or cached content that only Gemini holds" };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(await plan.body.text());
  } catch {
    return { declined: "the request body is not JSON" };
  }

  const reasons: string[] = [];
  for (const { provider, pool } of providers) {
    const model = provider.mapModel(trace.model);
    if (model === undefined) {
      reasons.push(`${provider.name} offers no substitute for ${trace.model}`);
      continue;
    }
    let body: Record<string, unknown>;
    if (native) {
      const translated = geminiToChat(parsed, model, plan.stream !== "none");
      if (!translated.ok) return { declined: translated.reason };
      body = translated.request as unknown as Record<string, unknown>;
    } else {
      const mapped = withProviderModel(parsed, model);
      if (!mapped) return { declined: "the request body is not a JSON object" };
      body = mapped;
    }
    const answer = await tryProvider(provider, pool, model, body, native, plan, trace, ctx);
    if (answer.response) return answer;
    reasons.push(answer.declined);
  }
  return { declined: reasons.join("; ") };
}

/** Rotates over one provider's keys until one answers or none can. */
async function tryProvider(
  provider: Provider,
  pool: KeyPool,
  model: string,
  body: Record<string, unknown>,
  native: boolean,
  plan: Plan,
  trace: Trace,
  ctx: ProxyContext,
): Promise<FallbackResult> {
  const tried = new Set<string>();
  for (let attempt = 0; attempt < ctx.config.maxAttempts; attempt++) {
    const now = ctx.clock.now();
    const key = pool.pick(model, now, { avoidKeys: tried });
    if (!key || tried.has(key.id)) break;
    tried.add(key.id);
    trace.attempts++;
    trace.keyIds.push(key.id);
    const sent = performance.now();
    let upstream: Response;
    try {
      upstream = await ctx.fetch(
        providerRequest(provider, key, body, { signal: plan.request.signal }),
      );
    } catch (error) {
      trace.attempt(key, 0, "network_error");
      if (plan.request.signal.aborted) return { response: trace.clientClosed() };
      ctx.log.warn("fallback provider unreachable", {
        provider: provider.name,
        key: key.id,
        error: describeError(error),
      });
      continue;
    }
    trace.upstreamMs = performance.now() - sent;
    const streaming = body.stream === true;
    if (upstream.ok && streaming && upstream.body) {
      trace.attempt(key, upstream.status, "ok");
      return { response: streamed(upstream, provider, model, plan, trace, ctx) };
    }
    const text = await upstream.text();
    // OpenRouter can answer 200 with an error in the body: its classify reads the real code.
    const outcome = provider.classify(upstream.status, upstream.headers, text, ctx.clock.now());
    trace.attempt(key, upstream.status, outcome.kind);
    if (outcome.kind === "ok") {
      const out = native ? JSON.stringify(chatToGemini(JSON.parse(text), model), null, 2) : text;
      return { response: answered(200, out, provider, model, trace, "application/json") };
    }
    const effect = providerEffect(outcome, {
      keyId: key.id,
      project: key.project,
      model,
      status: upstream.status,
      now: ctx.clock.now(),
      settings: ctx.config,
    });
    pool.apply(effect);
    if (effect.type === "disable") {
      ctx.log.warn("fallback provider key disabled", {
        provider: provider.name,
        key: key.id,
        reason: effect.record.reason,
      });
    }
    if (outcome.kind === "client_error" || outcome.kind === "not_key") {
      // The provider judged the request itself: its verdict is the answer.
      const status = upstream.status >= 400 ? upstream.status : 502;
      const out = native
        ? JSON.stringify(providerErrorBody(status, redact(text, key), provider.name), null, 2)
        : redact(text, key);
      return { response: answered(status, out, provider, model, trace, "application/json") };
    }
  }
  return { declined: `${provider.name}'s keys are spent or failing too` };
}

/** A streamed answer: translated to Gemini's framing for native clients, as is for OpenAI's. */
function streamed(
  upstream: Response,
  provider: Provider,
  model: string,
  plan: Plan,
  trace: Trace,
  ctx: ProxyContext,
): Response {
  const mode = plan.stream === "none" ? "sse" : plan.stream;
  const source = plan.route.kind === "native"
    ? upstream.body!.pipeThrough(
      chatStreamToGemini({ model, framing: mode, provider: provider.name }),
    )
    : upstream.body!;
  const body = relayBody(source, {
    mode,
    idleTimeoutMs: ctx.config.streamIdleTimeoutMs,
    releaseChunks: ctx.releaseStreamChunks === true,
    onEnd: (result) => trace.done(200, "upstream", { end: result.end, provider: provider.name }),
  });
  return new Response(body, {
    headers: headersFor(provider, model, "text/event-stream"),
  });
}

function answered(
  status: number,
  text: string,
  provider: Provider,
  model: string,
  trace: Trace,
  contentType: string,
): Response {
  trace.done(status, "upstream", { provider: provider.name });
  return new Response(text, { status, headers: headersFor(provider, model, contentType) });
}

function headersFor(provider: Provider, model: string, contentType: string): Headers {
  return new Headers({
    "content-type": contentType,
    "x-rotator-provider": provider.name,
    "x-rotator-model": headerSafe(model),
    via: "1.1 gemini-key-rotator",
  });
}

function redact(text: string, key: PoolKey): string {
  return text.replaceAll(key.value, "[REDACTED]");
}

/** The sentence appended to a 429 when providers exist but none answered. */
export function declinedNote(declined: string): string {
  return declined ? ` No fallback provider answered: ${declined}.` : "";
}
