/**
 * Runs the real app on a real port in front of the mock upstream, for end-to-end tests: clients
 * (fetch, @google/genai, openai) talk HTTP to it exactly as they would to the deployed rotator.
 */

import { type App, createApp } from "../src/app.ts";
import type { Clock } from "../src/clock.ts";
import { type Config, loadConfig } from "../src/config.ts";
import { type PoolKey, toPoolKeys } from "../src/keys.ts";
import { KvStore, type KvStoreOptions } from "../src/state/kv.ts";
import type { StateStore } from "../src/state/store.ts";
import type { ProxyObserver } from "../src/events.ts";
import type { QuotaCounter } from "../src/state/quota_counter.ts";
import { noKeepAlive } from "./no_keep_alive.ts";
import { type MockUpstream, startMockUpstream } from "./mock_upstream.ts";
import { denoWebSockets } from "../entries/deno_websockets.ts";
import { parseProvidersConfig } from "../src/providers/config.ts";

export const TOKEN = "test-access-token-0123456789";
export const ADMIN_TOKEN = "test-admin-token-0123456789";
export const KEY_SECRET = "test-key-encryption-secret-0123456789";

/** Test keys shaped like real ones, so the redaction of key-shaped text is exercised too. */
export function testKey(name: string): string {
  return `AIzaSy${name.padEnd(33, "x")}`.slice(0, 39);
}

export interface Rotator {
  readonly url: string;
  readonly app: App;
  readonly config: Config;
  readonly keys: readonly PoolKey[];
  readonly mock: MockUpstream;
  /** Log lines the app wrote. */
  readonly logs: string[];
  close(): Promise<void>;
}

export interface RotatorOptions {
  /** API_KEYS entries (`KEY` or `project:KEY`). */
  readonly keys: readonly string[];
  readonly env?: Record<string, string>;
  readonly clock?: Clock;
  readonly store?: StateStore;
  readonly mock?: MockUpstream;
  readonly observers?: ProxyObserver[];
  readonly quotaCounter?: QuotaCounter;
  /** The fetch the app uses to reach the upstream (to watch or stamp what it sends). */
  readonly fetch?: typeof fetch;
}

export async function startRotator(options: RotatorOptions): Promise<Rotator> {
  const mock = options.mock ?? startMockUpstream({ now: options.clock?.now });
  const env = {
    API_KEYS: options.keys.join(","),
    ACCESS_TOKEN: TOKEN,
    GEMINI_API_BASE_URL: mock.url,
    HOST: "127.0.0.1",
    RETRY_BACKOFF_MS: "1",
    ...options.env,
  };
  const config = loadConfig(env);
  const providers = parseProvidersConfig(env);
  const keys = await toPoolKeys(config.keys);
  const logs: string[] = [];
  const app = await createApp({
    config,
    keys,
    ...(options.store ? { store: options.store } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.observers ? { observers: options.observers } : {}),
    ...(options.quotaCounter ? { quotaCounter: options.quotaCounter } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
    writeLog: (line) => logs.push(line),
    webSockets: denoWebSockets,
    // The harness serves the app with Deno.serve, as entries/deno.ts does.
    releaseStreamChunks: true,
    providers,
    meta: { version: "test", entry: "test/harness.ts", platform: "test" },
  });
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    noKeepAlive((request) => app.fetch(request)),
  );
  return {
    url: `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`,
    app,
    config,
    keys,
    mock,
    logs,
    async close() {
      await server.shutdown();
      await app.close();
      if (!options.mock) await mock.close();
    },
  };
}

/** A clock that moves only when told; sleeps advance it instead of waiting. */
export class FakeClock implements Clock {
  constructor(public time = Date.UTC(2026, 10, 25, 18, 0, 0)) {}

  now = (): number => this.time;

  advance(ms: number): void {
    this.time += ms;
  }

  sleep = (ms: number, signal?: AbortSignal): Promise<void> => {
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.time += ms;
    return Promise.resolve();
  };
}

/** The text an OpenAI-style chat stream carried: its chunks' deltas, joined. */
export async function streamedChatText(
  stream: AsyncIterable<{ choices: { delta?: { content?: string | null } }[] }>,
): Promise<string> {
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
  return text;
}

/** A generateContent call through the rotator, as a plain HTTP client would make it. */
export function generate(
  rotator: Rotator,
  model = "gemini-2.5-flash",
  init: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Response> {
  return fetch(`${rotator.url}/v1beta/models/${model}:generateContent`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-goog-api-key": init.token ?? TOKEN,
      ...init.headers,
    },
    body: JSON.stringify(init.body ?? { contents: [{ parts: [{ text: "Hi" }] }] }),
  });
}

/**
 * A clock whose sleeps wait until the test moves time past them (advance), for tests of requests
 * that wait for keys to recover. Sleeps resolve in deadline order.
 */
export class ManualClock implements Clock {
  #timers: { at: number; resolve: () => void }[] = [];
  #changed: (() => void)[] = [];

  /** Resolves when a sleep is added or dropped (a waiter joins or gives up). */
  changed(): Promise<void> {
    return new Promise((resolve) => this.#changed.push(resolve));
  }

  #notify(): void {
    this.#changed.splice(0).forEach((resolve) => resolve());
  }

  constructor(public time = Date.UTC(2026, 10, 25, 18, 0, 0)) {}

  now = (): number => this.time;

  sleep = (ms: number, signal?: AbortSignal): Promise<void> => {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const timer = { at: this.time + ms, resolve };
      this.#timers.push(timer);
      this.#notify();
      signal?.addEventListener("abort", () => {
        this.#timers = this.#timers.filter((t) => t !== timer);
        this.#notify();
        reject(signal.reason);
      }, { once: true });
    });
  };

  /** Moves time forward, waking every sleep due by then, earliest first. */
  advance(ms: number): void {
    const target = this.time + ms;
    this.#timers.sort((a, b) => a.at - b.at);
    while (this.#timers.length > 0 && this.#timers[0].at <= target) {
      const timer = this.#timers.shift()!;
      this.time = Math.max(this.time, timer.at);
      timer.resolve();
    }
    this.time = target;
  }

  get sleepers(): number {
    return this.#timers.length;
  }
}

/** A Deno KV file in a fresh temp directory, for stores that must outlive one handle. */
export interface TempKv {
  readonly path: string;
  /** A KvStore on the file (each call opens another handle, as another instance would). */
  open(options?: KvStoreOptions): Promise<KvStore>;
  /** Every byte SQLite wrote for it (the database, its WAL and shared-memory files). */
  bytes(): Promise<Uint8Array>;
  dispose(): Promise<void>;
}

export async function tempKv(): Promise<TempKv> {
  const dir = await Deno.makeTempDir({ prefix: "rotator-kv-" });
  const path = `${dir}/rotator.kv`;
  return {
    path,
    async open(options = {}) {
      return new KvStore(await Deno.openKv(path), { pollMs: 20, ...options });
    },
    async bytes() {
      const parts: Uint8Array[] = [];
      for await (const entry of Deno.readDir(dir)) {
        if (entry.isFile) parts.push(await Deno.readFile(`${dir}/${entry.name}`));
      }
      const all = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
      let offset = 0;
      for (const part of parts) {
        all.set(part, offset);
        offset += part.byteLength;
      }
      return all;
    },
    async dispose() {
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** An admin API call as the CLI or the status page would make it. */
export async function admin(
  rotator: Rotator,
  method: string,
  path: string,
  body?: unknown,
  init: { token?: string | null; rawBody?: BodyInit } = {},
): Promise<{ status: number; json: Record<string, unknown>; text: string; headers: Headers }> {
  const token = init.token === undefined ? ADMIN_TOKEN : init.token;
  const response = await fetch(`${rotator.url}${path}`, {
    method,
    headers: {
      ...(token !== null ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined || init.rawBody ? { "content-type": "application/json" } : {}),
    },
    body: init.rawBody ?? (body !== undefined ? JSON.stringify(body) : undefined),
  });
  const text = await response.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text);
  } catch { /* not JSON */ }
  return { status: response.status, json, text, headers: response.headers };
}

/** Resolves when `condition()` holds, checking every 10 ms; rejects after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  condition: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 5000,
): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  for (;;) {
    const value = await condition();
    if (value !== undefined && value !== false) return { value, ms: performance.now() - t0 };
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
