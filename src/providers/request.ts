/**
 * The request that goes to a fallback provider: the chat-completions endpoint under that
 * provider's own base URL, its key in its own auth header, and nothing of the client's. The
 * only code that puts a provider's key anywhere, as upstream.ts is for Gemini's keys.
 */

import type { PoolKey } from "../keys.ts";
import type { ChatRequest } from "../translate/chat_types.ts";
import type { Provider } from "./provider.ts";

/** Thrown when a URL would leave the provider's base; never expected in practice. */
export class ProviderUrlError extends Error {}

export interface ProviderRequestInit {
  readonly signal?: AbortSignal;
}

/** `<baseUrl>/chat/completions`, checked to stay on the provider's origin and path. */
export function chatCompletionsUrl(provider: Provider): string {
  const base = new URL(provider.baseUrl);
  const url = new URL(`${provider.baseUrl}/chat/completions`);
  if (url.origin !== base.origin || !url.pathname.startsWith(base.pathname)) {
    throw new ProviderUrlError(`refusing a URL off ${provider.name}'s base URL`);
  }
  return url.href;
}

/**
 * A POST of `body` (a translated request, or an OpenAI-surface body with its model mapped) to
 * the provider's chat-completions endpoint with `key`. Redirects are not followed: a key must
 * not travel to wherever a redirect points.
 */
export function providerRequest(
  provider: Provider,
  key: PoolKey,
  body: ChatRequest | Readonly<Record<string, unknown>>,
  init: ProviderRequestInit = {},
): Request {
  const headers = new Headers(provider.extraHeaders);
  for (const [name, value] of Object.entries(provider.authHeaders(key.value))) {
    headers.set(name, value);
  }
  headers.set("content-type", "application/json");
  headers.set("accept", body.stream === true ? "text/event-stream" : "application/json");
  return new Request(chatCompletionsUrl(provider), {
    method: "POST",
    headers,
    body: JSON.stringify(body),
    redirect: "manual",
    ...(init.signal ? { signal: init.signal } : {}),
  });
}

/**
 * An OpenAI-surface request body with its model replaced by the provider's, or undefined when
 * the body is not a JSON object. Everything else goes as the client sent it.
 */
export function withProviderModel(
  body: unknown,
  model: string,
): Record<string, unknown> | undefined {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return undefined;
  return { ...body, model };
}
