/**
 * Fuzzing the two parsers that read text we do not control: the configuration (environment
 * record, API_KEYS lists, `.env` files) and the upstream error-body classifier. Random and
 * mutated inputs, from a fixed seed so a failure replays (FUZZ_SEED=n, FUZZ_ITERATIONS=n).
 *
 * Properties: the config parsers throw nothing but their own error (ConfigError, KeyListError,
 * DotenvError), and no message contains any part of a key or token; classify() is total (every
 * input gives a known Outcome) and the cooldown it leads to is a finite time in the future.
 */

import assert from "node:assert/strict";
import { classify, type Outcome } from "../src/classify.ts";
import { ConfigError, loadConfig } from "../src/config.ts";
import { effectOf } from "../src/cooldown.ts";
import { DotenvError, parseDotenv } from "../src/dotenv.ts";
import { KeyListError, parseKeyList } from "../src/key_list.ts";
import { prng } from "./prng.ts";

const SEED = Number(Deno.env.get("FUZZ_SEED") ?? 20261125);
const ITERATIONS = Number(Deno.env.get("FUZZ_ITERATIONS") ?? 2000);

class Gen {
  readonly random: () => number;
  constructor(seed: number) {
    this.random = prng(seed);
  }
  int(max: number): number {
    return Math.floor(this.random() * max);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  chance(p: number): boolean {
    return this.random() < p;
  }
  /** Text with the characters that break parsers: quotes, separators, controls, non-ASCII. */
  text(max = 40): string {
    const alphabet = [
      ..."abcXYZ019_-.:,;=#'\"`\\/{}[]<>() \t\n\r",
      "\u0000",
      "\u00e9",
      "\u200b",
      "\ufeff",
      "\ud83d\ude00",
      "\ud800",
      "export ",
      "AIza",
      "${",
      "%",
    ];
    let out = "";
    for (let i = this.int(max); i > 0; i--) out += this.pick(alphabet);
    return out;
  }
  /** A key-shaped secret: legacy AIza… or the newer AQ.… form. */
  key(): string {
    const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let body = "";
    for (let i = 0; i < 33; i++) body += this.pick([...chars]);
    return this.chance(0.8) ? `AIzaSy${body}` : `AQ.Ab8${body}${body.slice(0, 10)}`;
  }
  /** Deletes, inserts, duplicates or truncates somewhere in `text`. */
  mutate(text: string, times = 1 + this.int(4)): string {
    let out = text;
    for (let i = 0; i < times; i++) {
      const at = this.int(out.length + 1);
      switch (this.int(6)) {
        case 0:
          out = out.slice(0, at) + out.slice(at + 1 + this.int(5));
          break;
        case 1:
          out = out.slice(0, at) + this.text(4) + out.slice(at);
          break;
        case 2:
          out = out.slice(0, at) + out.slice(at, at + this.int(20)).repeat(2) + out.slice(at);
          break;
        case 3:
          out = out.slice(0, at);
          break;
        case 4:
          out = out.slice(0, at) + this.pick(['"', ",", ":", "[", "]", "{", "}", "\n", " "]) +
            out.slice(at);
          break;
        default: {
          const j = this.int(out.length + 1);
          out = out.slice(0, Math.min(at, j)) + out.slice(Math.max(at, j)).split("").reverse()
            .join("");
        }
      }
    }
    return out;
  }
}

/** An API_KEYS value in one of the forms operators write, and the secrets in it. */
function keyList(gen: Gen): { text: string; secrets: string[] } {
  const secrets = Array.from({ length: 1 + gen.int(4) }, () => gen.key());
  const project = () => gen.pick(["proj-a", "proj b", "p1", gen.text(10), secrets[0]]);
  let text: string;
  switch (gen.int(5)) {
    case 0:
      text = secrets.join(gen.pick([",", "\n", " , ", ",,", "\r\n"]));
      break;
    case 1:
      text = secrets.map((s) => gen.chance(0.5) ? `${project()}:${s}` : s).join(",");
      break;
    case 2:
      text = JSON.stringify(secrets);
      break;
    case 3:
      text = JSON.stringify(secrets.map((key) => ({
        key,
        ...(gen.chance(0.5) ? { project: project() } : {}),
        ...(gen.chance(0.3) ? { label: gen.text(12) } : {}),
        ...(gen.chance(0.1) ? { [gen.pick(["keys", "Key", "note", secrets[0]])]: "x" } : {}),
      })));
      break;
    default:
      // Mistakes that put a key where a name goes.
      text = gen.pick([
        JSON.stringify([{ [secrets[0]]: "proj" }]),
        JSON.stringify({ key: secrets[0] }),
        `${secrets[0]}:${secrets[1] ?? "x"}`,
        JSON.stringify([{ key: secrets[0], project: secrets[0] }]),
        JSON.stringify([{ key: secrets[0], label: `my ${secrets[0]}` }]),
      ]);
  }
  return { text: gen.chance(0.6) ? gen.mutate(text) : text, secrets };
}

/** The message must not contain a secret, nor any 10 characters in a row of one. */
function assertNoSecret(message: string, secrets: readonly string[], input: string): void {
  for (const secret of secrets) {
    for (let i = 0; i + 10 <= secret.length; i++) {
      const piece = secret.slice(i, i + 10);
      if (message.includes(piece)) {
        assert.fail(
          `a message quotes part of a secret (${JSON.stringify(piece)}):\n  ${message}\n` +
            `input: ${JSON.stringify(input).slice(0, 300)}`,
        );
      }
    }
  }
}

const VALUES: Record<string, (gen: Gen) => string> = {
  PORT: (g) => g.pick(["0", "8000", "65535", "65536", "-1", "80.5", " 81 ", "0x50", "1e3", ""]),
  MAX_ATTEMPTS: (g) => g.pick(["1", "100", "101", "0", "five", "99999999999999999999"]),
  RETRY_BACKOFF_MS: (g) => g.pick(["0", "60000", "60001", "-0", "1_000"]),
  MAX_BODY_BYTES: (g) => g.pick(["1024", "1023", "1073741824", "1073741825", "NaN"]),
  LOG_LEVEL: (g) => g.pick(["debug", "INFO", "warn ", "verbose", ""]),
  LOG_REQUESTS: (g) => g.pick(["true", "FALSE", "yes", "0", "maybe"]),
  ALLOW_UNAUTHENTICATED: (g) => g.pick(["true", "false", "1", "nope"]),
  HOST: (g) => g.pick(["127.0.0.1", "0.0.0.0", "::1", "localhost", "example.com", "127.1"]),
  GEMINI_API_BASE_URL: (g) =>
    g.pick([
      "https://generativelanguage.googleapis.com",
      "http://127.0.0.1:9",
      "https://user:pass@example.com",
      "ftp://example.com",
      "https://example.com/v1beta",
      "https://example.com?x=1",
      "not a url",
    ]),
  CORS_ORIGINS: (g) => g.pick(["*", "https://a.example,https://b.example", ",,,", ""]),
};

Deno.test("loadConfig() throws only ConfigError, and no message contains any part of a key or token", () => {
  const gen = new Gen(SEED);
  let accepted = 0;
  for (let i = 0; i < ITERATIONS; i++) {
    const { text, secrets } = keyList(gen);
    const env: Record<string, string> = { API_KEYS: text };
    const tokens = [gen.key().slice(0, 8 + gen.int(30)), gen.key()];
    if (gen.chance(0.7)) env.ACCESS_TOKEN = gen.chance(0.8) ? tokens[0] : gen.mutate(tokens[0]);
    if (gen.chance(0.3)) env.ACCESS_TOKENS = `${tokens[1]},${gen.mutate(tokens[1])}`;
    for (const [name, value] of Object.entries(VALUES)) {
      if (gen.chance(0.2)) env[name] = gen.chance(0.8) ? value(gen) : gen.text();
    }
    try {
      const config = loadConfig(env);
      accepted++;
      for (const key of config.keys) assert.match(key.value, /^[\x21-\x7e]+$/);
    } catch (error) {
      if (!(error instanceof ConfigError)) {
        assert.fail(`${error}\ninput: ${JSON.stringify(env).slice(0, 400)}`);
      }
      assert.match(error.message, /^Cannot start: /);
      assertNoSecret(error.message, [...secrets, ...tokens], JSON.stringify(env));
    }
  }
  assert.ok(accepted > ITERATIONS / 20, `some inputs were valid (${accepted})`);
});

Deno.test("parseKeyList() throws only KeyListError, never quoting a key nor naming a project after one", () => {
  const gen = new Gen(SEED + 1);
  for (let i = 0; i < ITERATIONS * 2; i++) {
    const { text, secrets } = keyList(gen);
    try {
      const { keys } = parseKeyList("API_KEYS", text);
      for (const key of keys) {
        assert.ok(!/[\s"'<>\\]/.test(key.value), key.value);
        // Project and label names are shown in the admin API and logs: never a key, nor
        // anything that starts like one. (Fragments of keys broken by the mutations are not
        // keys any more, so they are not looked for here.)
        const names = `${key.project ?? ""} ${key.label ?? ""}`;
        assert.doesNotMatch(names, /AIza|\b[AI]Q\./, text);
        for (const secret of secrets) assert.ok(!names.includes(secret), text);
      }
    } catch (error) {
      if (!(error instanceof KeyListError)) assert.fail(`${error}\ninput: ${text.slice(0, 300)}`);
      assertNoSecret(error.message, secrets, text);
    }
  }
});

Deno.test("parseDotenv() throws only DotenvError, naming a line and never quoting a value", () => {
  const gen = new Gen(SEED + 2);
  for (let i = 0; i < ITERATIONS; i++) {
    const secrets = [gen.key(), gen.key()];
    const lines = [
      `API_KEYS=${secrets[0]},${secrets[1]}`,
      `API_KEYS="${secrets[0]}\n${secrets[1]}"`,
      `export ACCESS_TOKEN='${secrets[1]}'`,
      `ACCESS_TOKEN = ${secrets[0]} # comment`,
      `# ${secrets[0]}`,
      "",
      "PORT=8000",
      `${secrets[0]}`,
      `KEY ${secrets[1]}`,
    ];
    let text = Array.from({ length: 1 + gen.int(6) }, () => gen.pick(lines)).join(
      gen.pick(["\n", "\r\n"]),
    );
    if (gen.chance(0.7)) text = gen.mutate(text);
    try {
      parseDotenv(text);
    } catch (error) {
      if (!(error instanceof DotenvError)) assert.fail(`${error}\ninput: ${text.slice(0, 300)}`);
      assert.match(error.message, /^\.env line \d+/);
      assertNoSecret(error.message, secrets, text);
    }
  }
});

const FIXTURES = [...Deno.readDirSync(new URL("./fixtures/gemini-errors/", import.meta.url))]
  .filter((entry) => entry.name.endsWith(".json") && entry.name !== "expected.json")
  .map((entry) =>
    Deno.readTextFileSync(new URL(`./fixtures/gemini-errors/${entry.name}`, import.meta.url))
  );

/** A random JSON value, sometimes of the shapes Google's details use. */
function randomValue(gen: Gen, depth = 0): unknown {
  switch (gen.int(depth > 3 ? 6 : 9)) {
    case 0:
      return null;
    case 1:
      return gen.pick([0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 1, 429]);
    case 2:
      return gen.text(20);
    case 3:
      return gen.pick(["33s", "0.5s", "-5s", "1e9s", "99999999999999999999s", "s", "10h50m", ""]);
    case 4:
      return gen.chance(0.5);
    case 5:
      return gen.pick([
        "type.googleapis.com/google.rpc.RetryInfo",
        "type.googleapis.com/google.rpc.QuotaFailure",
        "type.googleapis.com/google.rpc.ErrorInfo",
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
        "API_KEY_INVALID",
        "limit: 0",
      ]);
    case 6:
      return Array.from({ length: gen.int(4) }, () => randomValue(gen, depth + 1));
    default: {
      const out: Record<string, unknown> = {};
      for (let i = gen.int(4); i > 0; i--) {
        out[gen.pick(["@type", "violations", "retryDelay", "quotaValue", "reason", gen.text(6)])] =
          randomValue(gen, depth + 1);
      }
      return out;
    }
  }
}

/** Replaces, deletes or wraps one random node of a parsed JSON value. */
function mutateJson(gen: Gen, value: unknown): unknown {
  if (value === null || typeof value !== "object" || gen.chance(0.15)) {
    return gen.pick([
      () => randomValue(gen),
      () => [value],
      () => ({ error: value }),
      () => undefined,
    ])();
  }
  const container = structuredClone(value) as Record<string, unknown>;
  const keys = Object.keys(container);
  if (keys.length === 0) return randomValue(gen);
  const key = gen.pick(keys);
  const next = mutateJson(gen, container[key]);
  if (next === undefined) delete container[key];
  else container[key] = next;
  return container;
}

function fuzzedBody(gen: Gen): string {
  const base = gen.pick(FIXTURES);
  switch (gen.int(6)) {
    case 0:
      return gen.mutate(base, 1 + gen.int(8));
    case 1:
    case 2: {
      let value: unknown = JSON.parse(base);
      for (let i = 1 + gen.int(3); i > 0; i--) value = mutateJson(gen, value);
      return JSON.stringify(value) ?? "";
    }
    case 3:
      return `data: ${gen.mutate(base.replaceAll("\n", " "), gen.int(3))}\r\n\r\n`;
    case 4:
      return gen.pick([
        "",
        "<html><body>502 Bad Gateway</body></html>",
        "[".repeat(5000) + "]".repeat(5000),
        '{"error":'.repeat(3000),
        "x".repeat(70_000),
        "null",
        "[]",
        "[null]",
        '{"error":null}',
        '{"error":{"details":"not an array"}}',
        '{"error":{"details":[null,1,"s"]}}',
      ]);
    default:
      return gen.text(200);
  }
}

const KINDS = new Set<Outcome["kind"]>([
  "ok",
  "quota",
  "no_allowance",
  "project_exhausted",
  "key_rejected",
  "transient",
  "not_key",
  "client_error",
]);

const SETTINGS = {
  minuteCooldownMs: 60_000,
  unknownQuotaCooldownMs: 30_000,
  noAllowanceCooldownMs: 86_400_000,
  spendCapCooldownMs: 3_600_000,
  disabledRecheckMs: 86_400_000,
};

Deno.test("classify() is total on mutated real error bodies, and every cooldown ends in the future", () => {
  const gen = new Gen(SEED + 3);
  const now = Date.UTC(2026, 10, 25, 18, 0, 0);
  const seen = new Set<string>();
  for (let i = 0; i < ITERATIONS * 3; i++) {
    const status = gen.pick([
      429,
      429,
      400,
      401,
      403,
      402,
      404,
      500,
      502,
      503,
      504,
      200,
      gen.int(1000),
      -1,
      0,
      1e6,
    ]);
    const body = fuzzedBody(gen);
    let outcome: Outcome;
    try {
      outcome = classify({ status, body });
    } catch (error) {
      assert.fail(`classify threw ${error} on ${status} ${JSON.stringify(body).slice(0, 300)}`);
    }
    assert.ok(KINDS.has(outcome.kind), JSON.stringify(outcome));
    seen.add(outcome.kind);
    if (outcome.kind === "quota") {
      assert.ok(["minute", "day", "unknown"].includes(outcome.window));
      if (outcome.retryDelayMs !== undefined) {
        assert.ok(Number.isFinite(outcome.retryDelayMs) && outcome.retryDelayMs >= 0);
      }
    }
    const effect = effectOf(outcome, {
      keyId: "k",
      project: "p",
      model: "gemini-2.5-flash",
      status,
      now,
      settings: SETTINGS,
    });
    if (effect.type === "cooldown") {
      assert.ok(
        Number.isFinite(effect.record.until) && effect.record.until > now,
        `cooldown until ${effect.record.until} for ${JSON.stringify(outcome)}`,
      );
    }
  }
  for (const kind of ["quota", "key_rejected", "transient", "client_error"]) {
    assert.ok(seen.has(kind as Outcome["kind"]), `the fuzz reached ${kind}`);
  }
});

Deno.test("what the fuzz found stays fixed: keys written where names go are refused without echo", () => {
  const key = "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q";
  const other = "AIzaSyZ9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J";
  const cases: [() => unknown, new (message: string) => Error][] = [
    [() => parseKeyList("API_KEYS", JSON.stringify([{ [key]: "proj" }])), KeyListError],
    [() => parseKeyList("API_KEYS", `${key}:${other}`), KeyListError],
    [() => parseKeyList("API_KEYS", JSON.stringify([{ key, label: `mine ${key}` }])), KeyListError],
    [() => parseKeyList("API_KEYS", `${other},p1:${key},${key}:x`), KeyListError],
    [() => parseDotenv(`PORT=1\n${key} ${other}=x\n`), DotenvError],
  ];
  for (const [run, type] of cases) {
    assert.throws(run, (error: Error) => {
      assert.ok(error instanceof type, String(error));
      assertNoSecret(error.message, [key, other], "");
      return true;
    });
  }
});
