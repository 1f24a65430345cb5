/**
 * Turns the environment (a plain record, wherever it came from) into a frozen, typed Config.
 * Every field here has a row in the README's configuration table; every problem stops start-up
 * with a message naming the variable, and no message ever contains a key or a token.
 */

import { KeyListError, type KeySpec, parseKeyList } from "./key_list.ts";
import type { QuotaRule } from "./quota.ts";
import { parseQuotaLimits } from "./quota_config.ts";
import { parseModelFallbacks } from "./model_fallback.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Config {
  readonly keys: readonly KeySpec[];
  /** Blank or duplicate API_KEYS entries that were dropped. */
  readonly droppedKeyEntries: number;
  /** Client access tokens; empty means the proxy is open (loopback only unless opted in). */
  readonly accessTokens: readonly string[];
  readonly allowUnauthenticated: boolean;
  /** Token for the admin API under /admin/; unset disables it (every /admin/ path is 404). */
  readonly adminToken?: string;
  /** Secret that keys added at run time are sealed with; unset refuses adding keys. */
  readonly keyEncryptionSecret?: string;
  /** Upstream origin, e.g. `https://generativelanguage.googleapis.com` (no trailing slash). */
  readonly upstreamOrigin: string;
  readonly port: number;
  /** Address to listen on (ignored where the platform decides, as on Deno Deploy). */
  readonly hostname: string;
  /** Whether HOST was given explicitly (otherwise chosen from the auth mode). */
  readonly hostnameExplicit: boolean;
  readonly maxAttempts: number;
  readonly transientRetries: number;
  readonly retryBackoffMs: number;
  readonly retryBudgetMs: number;
  readonly upstreamTimeoutMs: number;
  readonly streamIdleTimeoutMs: number;
  readonly maxBodyBytes: number;
  readonly minuteCooldownMs: number;
  readonly unknownQuotaCooldownMs: number;
  readonly noAllowanceCooldownMs: number;
  readonly spendCapCooldownMs: number;
  readonly disabledRecheckMs: number;
  readonly corsOrigins: readonly string[];
  /** The rotator's public origin for URLs it hands out (upload sessions); default: as requested. */
  readonly publicBaseUrl?: string;
  readonly logLevel: LogLevel;
  readonly logRequests: boolean;
  /** Limits declared by the operator (QUOTA_LIMITS); pacing also learns them from 429s. */
  readonly quotaLimits: readonly QuotaRule[];
  /** Pace by learned and declared limits (`learn`), declared ones only, or not at all. */
  readonly pacing: "learn" | "declared" | "off";
  /** Longest a request waits for a key to recover before a 429 (0: only the reset grace). */
  readonly maxWaitMs: number;
  /** Requests waiting at once, over all models; beyond it the 429 comes at once. */
  readonly maxWaiting: number;
  /**
   * A key back within this long is waited for even when waiting is off: the rotator knows a
   * window's reset only to within a round trip (0: a 429 at once).
   */
  readonly resetGraceMs: number;
  /** Model substitutes (MODEL_FALLBACKS). */
  readonly modelFallbacks: ReadonlyMap<string, string>;
  // Observability (README "Observability").
  /** Tokens that may read /metrics: METRICS_TOKEN and ADMIN_TOKEN; empty disables /metrics. */
  readonly metricsTokens: readonly string[];
  /** Where alerts are posted; undefined disables alerts. A secret (Slack and Discord URLs are). */
  readonly alertWebhookUrl?: string;
  readonly alertFormat: AlertFormat;
  /** Alerts raised within this long of the first are sent together in one message. */
  readonly alertDebounceMs: number;
  /** At least this long between two alert messages; what arrives meanwhile waits and is merged. */
  readonly alertMinIntervalMs: number;
}

/** How an alert is written: Slack or Discord incoming-webhook bodies, or plain JSON. */
export type AlertFormat = "slack" | "discord" | "json";

/** Thrown by loadConfig; the message is safe to print as it is. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(`Cannot start: ${message}`);
    this.name = "ConfigError";
  }
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const MIB = 1024 * 1024;

export const DEFAULT_UPSTREAM = "https://generativelanguage.googleapis.com";

/** Defaults, also quoted by the README's configuration table. */
export const DEFAULTS = {
  PORT: 8000,
  MAX_ATTEMPTS: 5,
  TRANSIENT_RETRIES: 2,
  RETRY_BACKOFF_MS: 500,
  RETRY_BUDGET_MS: 30 * SECOND,
  UPSTREAM_TIMEOUT_MS: 10 * MINUTE,
  STREAM_IDLE_TIMEOUT_MS: 3 * MINUTE,
  MAX_BODY_BYTES: 20 * MIB,
  MINUTE_COOLDOWN_MS: MINUTE,
  UNKNOWN_QUOTA_COOLDOWN_MS: 30 * SECOND,
  NO_ALLOWANCE_COOLDOWN_MS: 24 * HOUR,
  SPEND_CAP_COOLDOWN_MS: HOUR,
  DISABLED_RECHECK_MS: 24 * HOUR,
  MAX_WAIT_SECONDS: 5,
  MAX_WAITING: 200,
  RESET_GRACE_MS: 250,
  ALERT_DEBOUNCE_MS: 10 * SECOND,
  ALERT_MIN_INTERVAL_MS: 5 * MINUTE,
} as const;

/** Shortest access or admin token accepted. */
const MIN_TOKEN_LENGTH = 8;
/** Shortest KEY_ENCRYPTION_SECRET accepted (it may be a passphrase; it is stretched). */
const MIN_SECRET_LENGTH = 16;

type Env = Readonly<Record<string, string | undefined>>;

export interface LoadOptions {
  /** The platform serves the app publicly whatever HOST says (Deno Deploy): require a token. */
  readonly publicPlatform?: boolean;
}

/** Reads every variable the core knows; throws ConfigError on the first problem found. */
export function loadConfig(env: Env, options: LoadOptions = {}): Config {
  const read = new EnvReader(env);
  let keys: KeySpec[];
  let dropped: number;
  try {
    ({ keys, dropped } = parseKeyList("API_KEYS", env.API_KEYS));
  } catch (error) {
    if (error instanceof KeyListError) throw new ConfigError(error.message);
    throw error;
  }

  const accessTokens = read.tokens();
  const allowUnauthenticated = read.bool("ALLOW_UNAUTHENTICATED", false);
  const hostRaw = read.string("HOST");
  const hostname = hostRaw ?? (accessTokens.length > 0 ? "0.0.0.0" : "127.0.0.1");
  if (accessTokens.length === 0 && options.publicPlatform && !allowUnauthenticated) {
    throw new ConfigError(
      "ACCESS_TOKEN is not set, and this platform serves the rotator on a public URL: anyone " +
        "could spend your keys. Set ACCESS_TOKEN (or ACCESS_TOKENS), or set " +
        "ALLOW_UNAUTHENTICATED=true to accept this",
    );
  }
  if (accessTokens.length === 0 && !isLoopback(hostname) && !allowUnauthenticated) {
    throw new ConfigError(
      `HOST is ${JSON.stringify(hostname)} but no ACCESS_TOKEN is set: anyone who can reach ` +
        `that address could spend your keys. Set ACCESS_TOKEN, or use HOST=127.0.0.1, or set ` +
        `ALLOW_UNAUTHENTICATED=true to accept this`,
    );
  }

  const adminToken = read.token("ADMIN_TOKEN", MIN_TOKEN_LENGTH);
  if (adminToken !== undefined && accessTokens.includes(adminToken)) {
    throw new ConfigError(
      "ADMIN_TOKEN is the same as an access token: every client could then manage the keys. " +
        "Give ADMIN_TOKEN its own value (for example `openssl rand -hex 24`)",
    );
  }
  const keyEncryptionSecret = read.token("KEY_ENCRYPTION_SECRET", MIN_SECRET_LENGTH);

  const config: Config = {
    keys,
    droppedKeyEntries: dropped,
    accessTokens,
    allowUnauthenticated,
    ...(adminToken !== undefined ? { adminToken } : {}),
    ...(keyEncryptionSecret !== undefined ? { keyEncryptionSecret } : {}),
    upstreamOrigin: read.origin("GEMINI_API_BASE_URL", DEFAULT_UPSTREAM),
    port: read.int("PORT", DEFAULTS.PORT, 0, 65535),
    hostname,
    hostnameExplicit: hostRaw !== undefined,
    maxAttempts: read.int("MAX_ATTEMPTS", DEFAULTS.MAX_ATTEMPTS, 1, 100),
    transientRetries: read.int("TRANSIENT_RETRIES", DEFAULTS.TRANSIENT_RETRIES, 0, 10),
    retryBackoffMs: read.int("RETRY_BACKOFF_MS", DEFAULTS.RETRY_BACKOFF_MS, 0, MINUTE),
    retryBudgetMs: read.int("RETRY_BUDGET_MS", DEFAULTS.RETRY_BUDGET_MS, 0, HOUR),
    upstreamTimeoutMs: read.int("UPSTREAM_TIMEOUT_MS", DEFAULTS.UPSTREAM_TIMEOUT_MS, 1, HOUR),
    streamIdleTimeoutMs: read.int(
      "STREAM_IDLE_TIMEOUT_MS",
      DEFAULTS.STREAM_IDLE_TIMEOUT_MS,
      1,
      HOUR,
    ),
    maxBodyBytes: read.int("MAX_BODY_BYTES", DEFAULTS.MAX_BODY_BYTES, 1024, 1024 * MIB),
    minuteCooldownMs: read.int("MINUTE_COOLDOWN_MS", DEFAULTS.MINUTE_COOLDOWN_MS, 0, 24 * HOUR),
    unknownQuotaCooldownMs: read.int(
      "UNKNOWN_QUOTA_COOLDOWN_MS",
      DEFAULTS.UNKNOWN_QUOTA_COOLDOWN_MS,
      0,
      24 * HOUR,
    ),
    noAllowanceCooldownMs: read.int(
      "NO_ALLOWANCE_COOLDOWN_MS",
      DEFAULTS.NO_ALLOWANCE_COOLDOWN_MS,
      0,
      30 * 24 * HOUR,
    ),
    spendCapCooldownMs: read.int(
      "SPEND_CAP_COOLDOWN_MS",
      DEFAULTS.SPEND_CAP_COOLDOWN_MS,
      0,
      30 * 24 * HOUR,
    ),
    disabledRecheckMs: read.int(
      "DISABLED_RECHECK_MS",
      DEFAULTS.DISABLED_RECHECK_MS,
      0,
      365 * 24 * HOUR,
    ),
    corsOrigins: read.list("CORS_ORIGINS") ?? ["*"],
    ...(read.string("PUBLIC_BASE_URL")
      ? { publicBaseUrl: read.origin("PUBLIC_BASE_URL", "https://rotator.example.com") }
      : {}),
    logLevel: read.oneOf("LOG_LEVEL", ["debug", "info", "warn", "error"] as const, "info"),
    logRequests: read.bool("LOG_REQUESTS", true),
    quotaLimits: parseQuotaLimits(env.QUOTA_LIMITS),
    pacing: read.oneOf("PACING", ["learn", "declared", "off"] as const, "learn"),
    maxWaitMs: read.int("MAX_WAIT_SECONDS", DEFAULTS.MAX_WAIT_SECONDS, 0, 10) * SECOND,
    maxWaiting: read.int("MAX_WAITING", DEFAULTS.MAX_WAITING, 0, 100_000),
    resetGraceMs: read.int("RESET_GRACE_MS", DEFAULTS.RESET_GRACE_MS, 0, SECOND),
    modelFallbacks: parseModelFallbacks(env.MODEL_FALLBACKS),
    ...observabilityConfig(read, adminToken),
  };
  return Object.freeze(config);
}

type ObservabilityConfig = Pick<
  Config,
  | "metricsTokens"
  | "alertWebhookUrl"
  | "alertFormat"
  | "alertDebounceMs"
  | "alertMinIntervalMs"
>;

function observabilityConfig(
  read: EnvReader,
  adminToken: string | undefined,
): ObservabilityConfig {
  const metricsTokens = [read.token("METRICS_TOKEN", MIN_TOKEN_LENGTH), adminToken]
    .filter((token): token is string => token !== undefined);
  const alertWebhookUrl = read.webhookUrl("ALERT_WEBHOOK_URL");
  return {
    metricsTokens: [...new Set(metricsTokens)],
    ...(alertWebhookUrl !== undefined ? { alertWebhookUrl } : {}),
    alertFormat: read.oneOf(
      "ALERT_FORMAT",
      ["slack", "discord", "json"] as const,
      guessAlertFormat(alertWebhookUrl),
    ),
    alertDebounceMs: read.int("ALERT_DEBOUNCE_MS", DEFAULTS.ALERT_DEBOUNCE_MS, 0, HOUR),
    alertMinIntervalMs: read.int(
      "ALERT_MIN_INTERVAL_MS",
      DEFAULTS.ALERT_MIN_INTERVAL_MS,
      0,
      24 * HOUR,
    ),
  };
}

/**
 * The format a webhook URL's host implies: Slack's and Discord's incoming webhooks each accept
 * only their own body (https://api.slack.com/messaging/webhooks,
 * https://discord.com/developers/docs/resources/webhook#execute-webhook).
 */
export function guessAlertFormat(url: string | undefined): AlertFormat {
  if (url === undefined) return "json";
  const host = new URL(url).hostname;
  if (host === "hooks.slack.com") return "slack";
  if (host === "discord.com" || host === "discordapp.com") return "discord";
  return "json";
}

/** True for addresses only this machine can reach. */
export function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || hostname === "[::1]" ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/** Typed accessors that produce ConfigErrors naming the variable. */
class EnvReader {
  constructor(private readonly env: Env) {}

  string(name: string): string | undefined {
    const value = this.env[name]?.trim();
    return value === undefined || value === "" ? undefined : value;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const raw = this.string(name);
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      throw new ConfigError(
        `${name} is ${JSON.stringify(raw.slice(0, 40))}: set it to a whole number from ${min} ` +
          `to ${max}`,
      );
    }
    return Number(raw);
  }

  bool(name: string, fallback: boolean): boolean {
    const raw = this.string(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (["1", "true", "yes", "on"].includes(raw)) return true;
    if (["0", "false", "no", "off"].includes(raw)) return false;
    throw new ConfigError(
      `${name} is ${JSON.stringify(raw.slice(0, 40))}: set it to true or false`,
    );
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const raw = this.string(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(raw)) {
      throw new ConfigError(
        `${name} is ${JSON.stringify(raw.slice(0, 40))}: set it to one of ${allowed.join(", ")}`,
      );
    }
    return raw as T;
  }

  list(name: string): string[] | undefined {
    const raw = this.string(name);
    if (raw === undefined) return undefined;
    return raw.split(/[,\n]/).map((s) => s.trim()).filter((s) => s !== "");
  }

  origin(name: string, fallback: string): string {
    const raw = this.string(name);
    if (raw === undefined) return fallback;
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new ConfigError(`${name} is not a URL: set it to an origin such as ${fallback}`);
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new ConfigError(`${name} must use https:// (or http:// for a local test upstream)`);
    }
    if (url.username || url.password) {
      throw new ConfigError(`${name} must not contain a user name or password`);
    }
    if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash) {
      throw new ConfigError(
        `${name} must be an origin only (scheme, host and port), without a path or query: ` +
          `for example ${fallback}`,
      );
    }
    return url.origin;
  }

  /** A single secret of at least `min` printable characters; errors never quote it. */
  token(name: string, min: number): string | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    if (/[\s"'\\]/.test(value) || /[^\x21-\x7e]/.test(value)) {
      throw new ConfigError(
        `${name} contains spaces, quotes or non-ASCII characters: use one printable word ` +
          "(for example the output of `openssl rand -hex 24`)",
      );
    }
    if (value.length < min) {
      throw new ConfigError(
        `${name} is shorter than ${min} characters: use a long random value (for example the ` +
          "output of `openssl rand -hex 24`)",
      );
    }
    return value;
  }

  /**
   * An http(s) URL that is itself a secret (Slack and Discord put the credential in the path),
   * so errors name the problem, never the value.
   */
  webhookUrl(name: string): string | undefined {
    const raw = this.string(name);
    if (raw === undefined) return undefined;
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new ConfigError(`${name} is not a URL: set it to the webhook's https:// address`);
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new ConfigError(`${name} must use https:// (or http:// for a local receiver)`);
    }
    return url.href;
  }

  /** ACCESS_TOKEN and ACCESS_TOKENS together; tokens are secrets, so errors never quote them. */
  tokens(): string[] {
    const tokens: string[] = [];
    const single = this.string("ACCESS_TOKEN");
    if (single !== undefined) tokens.push(single);
    for (const token of this.list("ACCESS_TOKENS") ?? []) tokens.push(token);
    for (const token of tokens) {
      if (/[\s"'\\]/.test(token) || /[^\x21-\x7e]/.test(token)) {
        throw new ConfigError(
          "ACCESS_TOKEN/ACCESS_TOKENS contain a token with spaces, quotes or non-ASCII " +
            "characters: a token is one printable word (clients send it in a header)",
        );
      }
      if (token.length < MIN_TOKEN_LENGTH) {
        throw new ConfigError(
          "ACCESS_TOKEN/ACCESS_TOKENS contain a token shorter than 8 characters: use a long " +
            "random value (for example the output of `openssl rand -hex 24`)",
        );
      }
    }
    return [...new Set(tokens)];
  }
}
