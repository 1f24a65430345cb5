/**
 * Quota utilisation: how much of the pool's combined quota the rotator turns into successful
 * answers when clients ask for more than the pool can carry, how many upstream 429s it wastes on
 * the way, and whether a client that waits for the rotator's Retry-After then succeeds.
 *
 *   deno task bench:quota                        reactive rotator (PACING=off), ~1 min 45 s
 *   BENCH_PACING=learn deno task bench:quota     pacing to limits learned from the 429s
 *   BENCH_PACING=declared deno task bench:quota  pacing to the limits, declared up front
 *
 * The mock upstream (in this process) enforces, per key and per model, two request quotas in
 * fixed windows, shortened so a run takes under two minutes:
 *   short window  3 s: the "per minute" quota  (f1's shape: ...PerMinutePerProjectPerModel...)
 *   long window  15 s: the "per day" stand-in  (f5's message shape, with a per-minute quota id)
 * Each key's windows start at a different offset, as projects' windows need not line up. A 429
 * carries a QuotaFailure naming the quota and its quotaValue, and a RetryInfo that is exactly the
 * time left in the window that is full (ms precision, rounded up).
 *
 * Why the long window is not a real per-day quota: the rotator (like Google) resets per-day
 * quotas at midnight Pacific time whatever RetryInfo says, so a `...PerDay...` quota id would cool
 * a key for hours. The stand-in is a per-minute-shaped quota five short windows long whose limit
 * is below five short windows' worth, so it binds the way a daily quota does.
 *
 * Load: 8 aggressive clients (retry 50 ms after the rotator's 429) and 4 polite ones (wait for
 * its Retry-After, then send again), each asking for one model, two in three of them for the
 * first. Utilisation counts only windows wholly inside the run.
 */

import { assertAlive, DENO, quantile, round, type Server, startServer, TOKEN } from "./lib.ts";

const RUN_MS = Number(Deno.env.get("BENCH_QUOTA_RUN_MS") ?? 75_000);
const SHORT_MS = 3_000;
const LONG_MS = 15_000;
/** Upstream time to answer an admitted request: requests in flight are what overshoot a bucket. */
const SERVICE_MS = 100;
const KEYS = 4;
const AGGRESSIVE = 8;
const POLITE = 4;
const SHORT_ID = "GenerateRequestsPerMinutePerProjectPerModel-FreeTier";
const LONG_ID = "GenerateRequestsPerMinutePerProjectPerModel-BenchLongWindow";
/** Per key and model: requests per short window, and per long window (< 5 x short: it binds). */
const LIMITS: Record<string, { short: number; long: number }> = {
  "gemini-2.5-flash": { short: 5, long: 18 },
  "gemini-2.5-pro": { short: 2, long: 8 },
};
const MODELS = Object.keys(LIMITS);

// ---------------------------------------------------------------------------------------------
// PACING SWITCH (issue 11). BENCH_PACING=off (default: the reactive rotator, which learns only
// from 429s), learn (PACING=learn: limits learned from the 429s' quotaValue and RetryInfo), or
// declared (PACING=declared with the mock's limits in QUOTA_LIMITS, durations for the windows).
const PACING = (Deno.env.get("BENCH_PACING") ?? "off") as "off" | "learn" | "declared";
/**
 * How long the rotator may hold a request for capacity (MAX_WAIT_SECONDS). 0 by default here, so
 * every "no key" answer is a 429 with Retry-After, which is what this benchmark checks; set
 * BENCH_WAIT_SECONDS=5 for the rotator's default behaviour.
 */
const WAIT_SECONDS = Deno.env.get("BENCH_WAIT_SECONDS") ?? "0";
/** BENCH_TRACE=1 prints every upstream 429 (when, which bucket and quota, what kind). */
const TRACE = Deno.env.get("BENCH_TRACE") === "1";
function pacingEnv(): Record<string, string> {
  if (PACING !== "declared") return { PACING };
  const limits = MODELS.map((model) =>
    `${model}=${LIMITS[model].short}/${SHORT_MS / 1000}s,${LIMITS[model].long}/${LONG_MS / 1000}s`
  );
  return { PACING, QUOTA_LIMITS: limits.join("; ") };
}
// ---------------------------------------------------------------------------------------------

interface Bucket {
  readonly phase: number;
  shortIndex: number;
  shortCount: number;
  longIndex: number;
  longCount: number;
  /** Admissions per long-window index. */
  readonly admittedByLong: Map<number, number>;
  /** Per quota ("short" | "long"): the window indices that refused at least once. */
  readonly refusedIn: Record<"short" | "long", Set<number>>;
}

/**
 * Why an upstream 429 happened, seen from the mock: the first refusal of its (bucket, quota)
 * (learning the limit), another in a window that had already refused (requests in flight when
 * the first came back), or the first of a later window (a probe, or pacing that sent too much).
 */
type RefusalKind = "first" | "sameWindow" | "laterWindow";

/** The limit-enforcing upstream: per (key, model) fixed windows, real 429 bodies. */
class QuotaMock {
  readonly buckets = new Map<string, Bucket>();
  admitted = 0;
  rejectedShort = 0;
  rejectedLong = 0;
  /** Upstream 429s by quota and kind. */
  readonly refusals = {
    short: { first: 0, sameWindow: 0, laterWindow: 0 },
    long: { first: 0, sameWindow: 0, laterWindow: 0 },
  };
  /** With BENCH_TRACE=1: one line per upstream 429. */
  readonly trace: string[] = [];
  readonly #t0: number;
  readonly #keys: string[];

  constructor(keys: string[], t0: number) {
    this.#keys = keys;
    this.#t0 = t0;
    keys.forEach((key, i) => {
      for (const model of MODELS) {
        this.buckets.set(`${key} ${model}`, {
          phase: (i * LONG_MS) / keys.length,
          shortIndex: -Infinity,
          shortCount: 0,
          longIndex: -Infinity,
          longCount: 0,
          admittedByLong: new Map(),
          refusedIn: { short: new Set(), long: new Set() },
        });
      }
    });
  }

  /** Brings a bucket's counters to the windows `now` falls in; returns the windows' ends. */
  #roll(bucket: Bucket, now: number): { shortEnd: number; longEnd: number } {
    const since = now - this.#t0 - bucket.phase;
    const shortIndex = Math.floor(since / SHORT_MS);
    const longIndex = Math.floor(since / LONG_MS);
    if (shortIndex !== bucket.shortIndex) {
      bucket.shortIndex = shortIndex;
      bucket.shortCount = 0;
    }
    if (longIndex !== bucket.longIndex) {
      bucket.longIndex = longIndex;
      bucket.longCount = 0;
    }
    const start = this.#t0 + bucket.phase;
    return {
      shortEnd: start + (shortIndex + 1) * SHORT_MS,
      longEnd: start + (longIndex + 1) * LONG_MS,
    };
  }

  /** When (key, model) has room again: `now` when it has room now. */
  roomAt(key: string, model: string, now: number): number {
    const bucket = this.buckets.get(`${key} ${model}`)!;
    const { shortEnd, longEnd } = this.#roll(bucket, now);
    const limit = LIMITS[model];
    if (bucket.longCount >= limit.long) return longEnd;
    if (bucket.shortCount >= limit.short) return shortEnd;
    return now;
  }

  /**
   * How long some key has had room for `model` at `now` (since its fixed window with room
   * began), ms; undefined when none has room. A rotator 429 moments after a window opened is
   * the rotator's margin for not knowing Google's boundary to the millisecond.
   */
  roomAge(model: string, now: number): number | undefined {
    let age: number | undefined;
    for (const key of this.#keys) {
      if (this.roomAt(key, model, now) > now) continue;
      const bucket = this.buckets.get(`${key} ${model}`)!;
      const start = this.#t0 + bucket.phase + bucket.shortIndex * SHORT_MS;
      age = Math.max(age ?? 0, now - start);
    }
    return age;
  }

  /** The first time any key has room for `model` (ground truth for "was Retry-After early?"). */
  nextRoom(model: string, now: number): number {
    return Math.min(...this.#keys.map((key) => this.roomAt(key, model, now)));
  }

  async handle(request: Request): Promise<Response> {
    const key = request.headers.get("x-goog-api-key") ?? "";
    const model = /models\/([^:]+):/.exec(new URL(request.url).pathname)?.[1] ?? "";
    await request.body?.cancel();
    const bucket = this.buckets.get(`${key} ${model}`);
    if (!bucket) return new Response("unknown key or model", { status: 400 });
    const now = Date.now();
    const { shortEnd, longEnd } = this.#roll(bucket, now);
    const limit = LIMITS[model];
    if (bucket.longCount >= limit.long) {
      this.rejectedLong++;
      this.#file(key, model, bucket, "long", bucket.longIndex, longEnd - now, now);
      return quotaError(model, LONG_ID, limit.long, longEnd - now);
    }
    if (bucket.shortCount >= limit.short) {
      this.rejectedShort++;
      this.#file(key, model, bucket, "short", bucket.shortIndex, shortEnd - now, now);
      return quotaError(model, SHORT_ID, limit.short, shortEnd - now);
    }
    bucket.shortCount++;
    bucket.longCount++;
    bucket.admittedByLong.set(
      bucket.longIndex,
      (bucket.admittedByLong.get(bucket.longIndex) ?? 0) + 1,
    );
    this.admitted++;
    await new Promise((resolve) => setTimeout(resolve, SERVICE_MS));
    return Response.json({
      candidates: [{ content: { parts: [{ text: "ok" }], role: "model" }, finishReason: "STOP" }],
      usageMetadata: { promptTokenCount: 2, candidatesTokenCount: 1, totalTokenCount: 3 },
    });
  }

  /** Files one 429 by kind (see RefusalKind). */
  #file(
    key: string,
    model: string,
    bucket: Bucket,
    quota: "short" | "long",
    index: number,
    leftMs: number,
    now: number,
  ): void {
    const seen = bucket.refusedIn[quota];
    const kind: RefusalKind = seen.size === 0
      ? "first"
      : seen.has(index)
      ? "sameWindow"
      : "laterWindow";
    seen.add(index);
    this.refusals[quota][kind]++;
    if (TRACE) {
      this.trace.push(
        `${((now - this.#t0) / 1000).toFixed(3)} s  key ${this.#keys.indexOf(key)} ${model} ` +
          `${quota} window ${index} (${Math.ceil(leftMs)} ms left): ${kind}`,
      );
    }
  }

  /** Admissions and capacity over the long windows that lie wholly inside [t0, end). */
  utilisation(end: number): {
    capacity: number;
    admitted: number;
    windows: number;
    byModel: Record<string, { capacity: number; admitted: number }>;
  } {
    let capacity = 0;
    let admitted = 0;
    let windows = 0;
    const byModel: Record<string, { capacity: number; admitted: number }> = {};
    for (const [id, bucket] of this.buckets) {
      const model = id.split(" ")[1];
      const limit = LIMITS[model];
      const perLong = Math.min(limit.long, (LONG_MS / SHORT_MS) * limit.short);
      const mine = byModel[model] ??= { capacity: 0, admitted: 0 };
      for (let k = 0; this.#t0 + bucket.phase + (k + 1) * LONG_MS <= end; k++) {
        const got = bucket.admittedByLong.get(k) ?? 0;
        capacity += perLong;
        admitted += got;
        mine.capacity += perLong;
        mine.admitted += got;
        windows++;
      }
    }
    return { capacity, admitted, windows, byModel };
  }
}

/** A 429 as Gemini sends it (f1/f5 shapes): QuotaFailure with quotaValue, and RetryInfo. */
function quotaError(model: string, quotaId: string, limit: number, retryMs: number): Response {
  const seconds = (Math.ceil(retryMs) / 1000).toFixed(3);
  return Response.json({
    error: {
      code: 429,
      message: "You exceeded your current quota, please check your plan and billing details. " +
        "For more information on this error, head to: " +
        "https://ai.google.dev/gemini-api/docs/rate-limits. \n* Quota exceeded for metric: " +
        `generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: ${limit}, ` +
        `model: ${model}\nPlease retry in ${seconds}s.`,
      status: "RESOURCE_EXHAUSTED",
      details: [
        {
          "@type": "type.googleapis.com/google.rpc.Help",
          links: [{
            description: "Learn more about Gemini API quotas",
            url: "https://ai.google.dev/gemini-api/docs/rate-limits",
          }],
        },
        {
          "@type": "type.googleapis.com/google.rpc.QuotaFailure",
          violations: [{
            quotaMetric: "generativelanguage.googleapis.com/generate_content_free_tier_requests",
            quotaId,
            quotaDimensions: { location: "global", model },
            quotaValue: String(limit),
          }],
        },
        { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: `${seconds}s` },
      ],
    },
  }, { status: 429 });
}

interface ClientStats {
  requests: number;
  ok: number;
  /** The rotator's own 429 (all keys cooling). */
  rotator429: number;
  /** A Google error passed to the client (should never happen for quota errors). */
  raw: number;
  other: number;
  /** Rotator 429s whose Retry-After ended before any key had room (ground truth at receipt). */
  early: number;
  /** Rotator 429s while some key had room for the model (ground truth at receipt). */
  whileRoom: number;
  /** How much later than needed Retry-After sent clients back, ms. */
  readonly overshootMs: number[];
  /** When the last early Retry-After was given (epoch ms). */
  lastEarlyAt?: number;
  /** For each rotator 429 while some key had room: how long that room had been open, ms. */
  readonly roomAgeMs: number[];
  /** Per model: time clients spent on requests (waiting in the rotator included), ms. */
  readonly busyMs: Record<string, number>;
  politeWaits: number;
  politeWaitOk: number;
  /** Requests that got no HTTP answer at all from the rotator. */
  failed: number;
}

function newStats(): ClientStats {
  return {
    requests: 0,
    ok: 0,
    rotator429: 0,
    raw: 0,
    other: 0,
    early: 0,
    whileRoom: 0,
    overshootMs: [],
    roomAgeMs: [],
    busyMs: {},
    politeWaits: 0,
    politeWaitOk: 0,
    failed: 0,
  };
}

async function call(rotator: Server, model: string): Promise<Response> {
  return await fetch(`${rotator.url}/v1beta/models/${model}:generateContent`, {
    method: "POST",
    headers: { "x-goog-api-key": TOKEN, "content-type": "application/json" },
    body: JSON.stringify({ contents: [{ parts: [{ text: "Hi" }] }] }),
  });
}

/** Sends one request and files its answer; returns the Retry-After of a rotator 429, in ms. */
async function send(
  rotator: Server,
  mock: QuotaMock,
  model: string,
  stats: ClientStats,
): Promise<{ status: number; retryMs?: number }> {
  stats.requests++;
  let response: Response;
  let text: string;
  const started = Date.now();
  try {
    response = await call(rotator, model);
    text = await response.text();
    stats.busyMs[model] = (stats.busyMs[model] ?? 0) + Date.now() - started;
  } catch (error) {
    stats.failed++;
    if (stats.failed <= 3) console.error(`${new Date().toISOString()} request failed: ${error}`);
    return { status: 0 };
  }
  if (response.status === 200) {
    stats.ok++;
    return { status: 200 };
  }
  if (response.status === 429 && text.includes('"domain": "gemini-key-rotator"')) {
    stats.rotator429++;
    const retryMs = Number(response.headers.get("retry-after")) * 1000;
    const now = Date.now();
    const room = mock.nextRoom(model, now);
    if (room <= now) {
      stats.whileRoom++;
      stats.roomAgeMs.push(mock.roomAge(model, now) ?? 0);
    }
    if (now + retryMs < room) {
      stats.early++;
      stats.lastEarlyAt = now;
    }
    stats.overshootMs.push(now + retryMs - room);
    return { status: 429, retryMs };
  }
  if (response.status === 429) stats.raw++;
  else stats.other++;
  return { status: response.status };
}

/** "first / same window / later window" over both quotas, then per quota. */
function refusalSummary(mock: QuotaMock): string {
  const { short, long } = mock.refusals;
  const all = (kind: RefusalKind) => short[kind] + long[kind];
  const one = (r: Record<RefusalKind, number>) => `${r.first}/${r.sameWindow}/${r.laterWindow}`;
  return `${all("first")} / ${all("sameWindow")} / ${all("laterWindow")} ` +
    `(short ${one(short)}, long ${one(long)})`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const keys = Array.from({ length: KEYS }, (_, i) => `AIzaSyQuota${String(i).padStart(28, "0")}`);
  const t0 = Date.now() + 1_000;
  const mock = new QuotaMock(keys, t0);
  const upstream = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    (request) => mock.handle(request),
  );
  const rotator = await startServer("rotator", [
    "--allow-net",
    "--allow-env",
    "--allow-read",
    "entries/deno.ts",
  ], {
    API_KEYS: keys.join(","),
    ACCESS_TOKEN: TOKEN,
    GEMINI_API_BASE_URL: `http://127.0.0.1:${(upstream.addr as Deno.NetAddr).port}`,
    HOST: "127.0.0.1",
    PORT: "0",
    STATE: "memory",
    LOG_REQUESTS: "false",
    MAX_WAIT_SECONDS: WAIT_SECONDS,
    ...pacingEnv(),
  });
  const stats = newStats();
  try {
    await sleep(t0 - Date.now());
    const end = t0 + RUN_MS;
    console.error(
      `PACING=${PACING} run: ${KEYS} keys x ${MODELS.length} models, ` +
        `${AGGRESSIVE + POLITE} clients, ${RUN_MS / 1000} s (${RUN_MS / SHORT_MS} short windows)`,
    );
    const client = async (id: number, polite: boolean) => {
      // Each client asks for one model (two in three for the first), so a client waiting in the
      // rotator for one model's scarce quota never lowers the demand for the other: every model
      // is asked for more than its quota for the whole run, with waiting on or off.
      const model = id % 3 < 2 ? MODELS[0] : MODELS[1];
      while (Date.now() < end) {
        const answer = await send(rotator, mock, model, stats);
        if (answer.status !== 429) continue;
        const wait = polite ? answer.retryMs ?? 1000 : 50;
        if (Date.now() + wait >= end) break;
        await sleep(wait);
        if (polite && answer.retryMs !== undefined) {
          stats.politeWaits++;
          if ((await send(rotator, mock, model, stats)).status === 200) stats.politeWaitOk++;
        }
      }
    };
    await Promise.all([
      ...Array.from({ length: AGGRESSIVE }, (_, i) => client(i, false)),
      ...Array.from({ length: POLITE }, (_, i) => client(AGGRESSIVE + i, true)),
    ]);
    const used = mock.utilisation(end);
    const { admitted, rejectedShort, rejectedLong } = mock;
    const refused = refusalSummary(mock); // before the probe below adds its own
    const rejected = rejectedShort + rejectedLong;

    // Probe, with no other traffic: spend a model's pool, wait exactly Retry-After, try again.
    const probes: string[] = [];
    let probeEarly = 0;
    let probeOk = 0;
    for (const model of MODELS) {
      const probe = newStats();
      let answer: { status: number; retryMs?: number } = { status: 0 };
      const until = Date.now() + 20_000;
      while (answer.status !== 429 && Date.now() < until) {
        answer = await send(rotator, mock, model, probe);
      }
      if (answer.status !== 429) {
        probes.push(`${model}: no 429 within 20 s (the rotator held requests instead)`);
        continue;
      }
      const at = Date.now();
      const needed = mock.nextRoom(model, at) - at;
      await sleep(answer.retryMs ?? 0);
      const after = await send(rotator, mock, model, probe);
      probeEarly += probe.early;
      if (after.status === 200) probeOk++;
      probes.push(
        `${model}: Retry-After ${(answer.retryMs ?? 0) / 1000} s, first key had room after ` +
          `${round(needed / 1000, 3)} s; after waiting: ${after.status}`,
      );
    }

    assertAlive([rotator]);
    const lines = [
      `| Mode | PACING=${PACING}${
        PACING === "declared" ? ` (${pacingEnv().QUOTA_LIMITS})` : ""
      }, MAX_WAIT_SECONDS=${WAIT_SECONDS} |`,
      "|---|---:|",
      `| Windows measured (bucket x long window wholly inside the run) | ${used.windows} |`,
      `| Combined quota in those windows (requests) | ${used.capacity} |`,
      `| Admitted by the upstream in those windows | ${used.admitted} |`,
      `| **Share of combined quota used** | **${
        round((used.admitted / used.capacity) * 100, 1)
      }%** |`,
      `| Share used per model | ${
        MODELS.map((model) => {
          const { admitted, capacity } = used.byModel[model];
          return `${model} ${round((admitted / capacity) * 100, 1)}%`;
        }).join(", ")
      } |`,
      `| Client time spent on requests per model (waiting included), s | ${
        MODELS.map((model) => `${model} ${round((stats.busyMs[model] ?? 0) / 1000, 0)}`).join(", ")
      } |`,
      `| Upstream successes / upstream 429s, whole run | ${admitted} / ${rejected} (short ${rejectedShort}, long ${rejectedLong}) |`,
      `| **Upstream 429s wasted per success** | **${round(rejected / admitted, 3)}** |`,
      `| Upstream 429s: first per bucket and quota / same window again / a later window | ${refused} |`,
      `| Client requests: 200 / rotator 429 / raw Google error / other / no answer | ${stats.ok} / ${stats.rotator429} / ${stats.raw} / ${stats.other} / ${stats.failed} |`,
      `| Rotator 429s with an early Retry-After (ground truth at receipt) | ${stats.early} of ${stats.rotator429}${
        stats.lastEarlyAt === undefined
          ? ""
          : ` (the last ${round((stats.lastEarlyAt - t0) / 1000, 1)} s into the run)`
      } |`,
      `| Rotator 429s while some key had room (ground truth at receipt) | ${stats.whileRoom} of ${stats.rotator429} |`,
      `| Those 429s while room: how long the room had been open, p50 / p90, ms | ${
        stats.roomAgeMs.length === 0
          ? "-"
          : `${round(quantile(stats.roomAgeMs, 0.5), 0)} / ${
            round(quantile(stats.roomAgeMs, 0.9), 0)
          }`
      } |`,
      `| Retry-After later than needed, p50 / p99, ms | ${
        round(quantile(stats.overshootMs, 0.5), 0)
      } / ${round(quantile(stats.overshootMs, 0.99), 0)} |`,
      `| Polite clients: waited Retry-After, then succeeded (under contention) | ${stats.politeWaitOk} of ${stats.politeWaits} |`,
      `| Probe (no other traffic): waited Retry-After, then succeeded; early | ${probeOk} of ${MODELS.length}; ${probeEarly} early |`,
    ];
    console.log(lines.join("\n"));
    console.log(`\n${probes.join("\n")}`);
    if (TRACE) console.log(`\n${mock.trace.join("\n")}`);
    console.log(
      `\n${new Date().toISOString()}, Deno ${Deno.version.deno} (${
        DENO.replace(/.*\/node_modules/, "node_modules")
      })`,
    );
  } finally {
    await rotator.stop();
    await upstream.shutdown();
  }
}

if (import.meta.main) await main();
