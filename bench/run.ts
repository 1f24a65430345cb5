/**
 * What the rotator costs per request, side by side with the upstream called directly and with a
 * bare pass-through proxy, in one run on loopback (`deno task bench`).
 *
 * Every server is its own process (CPU time and peak RSS are read from /proc per process):
 *   direct        bench/mock.ts, the fast mock upstream
 *   bare          bench/bare_proxy.ts, fetch-and-return in front of the mock
 *   minimal       bench/minimal_proxy.ts, only what any key-rotating proxy must do (read the body,
 *                 swap the credential, bound the wait, read the answer, new headers)
 *   rotator-3     entries/deno.ts with 3 keys, STATE=memory, LOG_REQUESTS=false
 *   rotator-10k   the same with 10,000 keys, half of them cooling: during a warm-up the mock
 *                 answers a per-minute 429 (RetryInfo 3600 s) for every key containing "Cool",
 *                 so the rotator learns the cooldowns the way it would in production
 *
 * Measured per target: requests/s at saturation (wrk, 50 connections), p50/p99 latency at a
 * fixed moderate rate (bench/fixed_rate.ts, 500 req/s evenly spaced), server CPU ms per request, peak RSS under
 * load, RSS growth while streaming 100 MiB and uploading 20 MiB, and time to first byte of a
 * stream. Options: `--seconds N` per load phase (default 10), `--rounds N`, `--json FILE`,
 * `--profile` (instead: a --cpu-prof run of each rotator under saturation, summarised by self
 * time), `--decompose` (instead: CPU per request of the bare proxy with each step a key-swapping
 * proxy takes, bench/proxy_steps.ts, beside the minimal proxy and the rotator).
 */

import {
  assertAlive,
  BODY,
  CLIENT_CORE,
  cpuMs,
  fixedRate,
  flagValue,
  GENERATE,
  memory,
  pin,
  quantile,
  resetPeak,
  round,
  run,
  type Server,
  SERVER_CORE,
  startServer,
  STREAM,
  TOKEN,
  wrk,
} from "./lib.ts";

const SECONDS = Number(flagValue("--seconds") ?? 10);
const JSON_OUT = flagValue("--json");
const PROFILE = Deno.args.includes("--profile");
const DECOMPOSE = Deno.args.includes("--decompose");
const RATE = 500;
const ROUNDS = Number(flagValue("--rounds") ?? 3);
const STREAM_BYTES = 100 * 1024 * 1024;
const UPLOAD_BYTES = 20 * 1024 * 1024;
const TTFB_SAMPLES = 300;
const BIG_POOL = 10_000;

/** A key shaped like a real one (39 characters); "Cool" marks the ones the mock refuses. */
function benchKey(i: number, cool: boolean): string {
  return `AIzaSyBench${cool ? "Cool" : "Okay"}${String(i).padStart(24, "0")}`;
}

function rotatorEnv(upstream: string, extra: Record<string, string>): Record<string, string> {
  return {
    ACCESS_TOKEN: TOKEN,
    GEMINI_API_BASE_URL: upstream,
    HOST: "127.0.0.1",
    PORT: "0",
    STATE: "memory",
    LOG_REQUESTS: "false",
    ...extra,
  };
}

const ROTATOR_ARGS = ["--allow-net", "--allow-env", "--allow-read", "entries/deno.ts"];

interface Target {
  readonly name: string;
  readonly label: string;
  readonly server: Server;
  /** The process whose CPU and memory are the target's own (the proxy, or the mock when direct). */
  readonly pid: number;
}

interface Row extends Saturation {
  p50Ms: number;
  p99Ms: number;
  rateFailed: number;
  rateLate: number;
  streamMiBps: number;
  streamRssGrowthMiB: number;
  uploadRssGrowthMiB: number;
  uploadStatus: number;
  ttfbP50Ms: number;
  ttfbP99Ms: number;
}

async function curl(args: string[]): Promise<string> {
  return await run("curl", ["-s", ...args]);
}

/** Drives the 10k-key rotator until the mock has refused every "Cool" key once. */
async function warmUpCooling(mock: Server, rotator: Server): Promise<void> {
  await fetch(`${mock.url}/__bench/warmup?on=1`, { method: "POST" }).then((r) => r.body?.cancel());
  let done = false;
  const deadline = Date.now() + 120_000;
  const worker = async () => {
    while (!done && Date.now() < deadline) {
      const response = await fetch(rotator.url + GENERATE, {
        method: "POST",
        headers: { "x-goog-api-key": TOKEN, "content-type": "application/json" },
        body: BODY,
      });
      await response.body?.cancel();
    }
  };
  const workers = Array.from({ length: 16 }, worker);
  while (Date.now() < deadline) {
    const stats = await (await fetch(`${mock.url}/__bench/stats`)).json();
    if (stats.cooledKeys >= BIG_POOL / 2) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  done = true;
  await Promise.all(workers);
  await fetch(`${mock.url}/__bench/warmup?on=0`, { method: "POST" }).then((r) => r.body?.cancel());
  const health = await (await fetch(`${rotator.url}/healthz`)).json();
  console.error(`  rotator-10k after warm-up: ${JSON.stringify(health.keys)}`);
  if (health.keys.cooling !== BIG_POOL / 2) {
    throw new Error(`warm-up left ${health.keys.cooling} keys cooling, not ${BIG_POOL / 2}`);
  }
}

async function ttfb(url: string): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < TTFB_SAMPLES + 30; i++) {
    const t0 = performance.now();
    const response = await fetch(url + STREAM, {
      method: "POST",
      headers: { "x-goog-api-key": TOKEN, "content-type": "application/json" },
      body: BODY,
    });
    const reader = response.body!.getReader();
    await reader.read();
    const t1 = performance.now();
    while (!(await reader.read()).done) { /* drain */ }
    if (i >= 30) samples.push(t1 - t0);
  }
  return samples;
}

interface Saturation {
  rps: number;
  /** Slowest and fastest round: the spread says how noisy the machine was. */
  rpsMin: number;
  rpsMax: number;
  errors: number;
  cpuMsPerRequest: number;
  mockCpuMsPerRequest: number;
  peakRssMiB: number;
  idleRssMiB: number;
}

/**
 * Requests/s and CPU per request at saturation: ROUNDS rounds over all targets, interleaved so
 * drift on the machine hits every target alike; the median round counts.
 */
async function saturate(targets: Target[], mock: Server): Promise<Record<string, Saturation>> {
  const rounds = new Map<string, { rps: number; errors: number; cpu: number; mockCpu: number }[]>();
  const idle = new Map<string, number>();
  for (const target of targets) {
    idle.set(target.name, memory(target.pid).rss);
    resetPeak(target.pid);
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const target of targets) {
      await pin(target.pid, SERVER_CORE);
      await wrk(target.server.url + GENERATE, round === 0 ? 3 : 1); // warm-up: connections, JIT
      const cpu0 = cpuMs(target.pid);
      const mockCpu0 = cpuMs(mock.pid);
      const result = await wrk(target.server.url + GENERATE, SECONDS);
      const cpu = cpuMs(target.pid) - cpu0;
      const mockCpu = cpuMs(mock.pid) - mockCpu0;
      await pin(target.pid, CLIENT_CORE);
      const runs = rounds.get(target.name) ?? [];
      runs.push({
        rps: result.rps,
        errors: result.errors,
        cpu: cpu / result.requests,
        mockCpu: mockCpu / result.requests,
      });
      rounds.set(target.name, runs);
      console.error(`  round ${round + 1} ${target.name}: ${JSON.stringify(runs.at(-1))}`);
    }
  }
  const out: Record<string, Saturation> = {};
  for (const target of targets) {
    const runs = rounds.get(target.name)!;
    out[target.name] = {
      rps: round(quantile(runs.map((r) => r.rps), 0.5), 0),
      rpsMin: round(Math.min(...runs.map((r) => r.rps)), 0),
      rpsMax: round(Math.max(...runs.map((r) => r.rps)), 0),
      errors: runs.reduce((sum, r) => sum + r.errors, 0),
      cpuMsPerRequest: round(quantile(runs.map((r) => r.cpu), 0.5), 4),
      mockCpuMsPerRequest: round(quantile(runs.map((r) => r.mockCpu), 0.5), 4),
      peakRssMiB: round(memory(target.pid).peak, 1),
      idleRssMiB: round(idle.get(target.name)!, 1),
    };
  }
  return out;
}

/** Latency at a fixed rate, large bodies and time to first byte, for one target. */
async function measure(target: Target, saturation: Saturation): Promise<Row> {
  const url = target.server.url;
  console.error(`- ${target.label}`);
  await pin(target.pid, SERVER_CORE);
  const rate = await fixedRate(url + GENERATE, RATE, SECONDS);
  console.error(`  fixed rate: ${JSON.stringify(rate)}`);

  const auth = ["-H", `x-goog-api-key: ${TOKEN}`, "-H", "content-type: application/json"];
  const before = memory(target.pid).rss;
  resetPeak(target.pid);
  const [size, seconds] = (await curl([
    "-o",
    "/dev/null",
    "-w",
    "%{size_download} %{time_total}",
    "-X",
    "POST",
    ...auth,
    "--data",
    BODY,
    `${url}${STREAM}&bytes=${STREAM_BYTES}`,
  ])).split(" ").map(Number);
  const streamGrowth = memory(target.pid).peak - before;
  if (size < STREAM_BYTES) throw new Error(`${target.name}: stream cut at ${size} bytes`);

  const file = await Deno.makeTempFile();
  await Deno.writeFile(file, new Uint8Array(UPLOAD_BYTES).fill(0x61));
  const beforeUpload = memory(target.pid).rss;
  resetPeak(target.pid);
  const uploadStatus = Number(
    await curl([
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "-X",
      "POST",
      ...auth,
      "--data-binary",
      `@${file}`,
      url + GENERATE,
    ]),
  );
  const uploadGrowth = memory(target.pid).peak - beforeUpload;
  await Deno.remove(file);

  const firstBytes = await ttfb(url);
  await pin(target.pid, CLIENT_CORE);
  const row: Row = {
    ...saturation,
    p50Ms: round(rate.p50Ms, 2),
    p99Ms: round(rate.p99Ms, 2),
    rateFailed: rate.failed,
    rateLate: rate.late,
    streamMiBps: round(size / 1024 / 1024 / seconds, 0),
    streamRssGrowthMiB: round(Math.max(0, streamGrowth), 1),
    uploadRssGrowthMiB: round(Math.max(0, uploadGrowth), 1),
    uploadStatus,
    ttfbP50Ms: round(quantile(firstBytes, 0.5), 3),
    ttfbP99Ms: round(quantile(firstBytes, 0.99), 3),
  };
  console.error(`  ${JSON.stringify(row)}`);
  return row;
}

function table(results: Record<string, Row>, labels: Record<string, string>): string {
  const names = Object.keys(results);
  const bare = results.bare;
  const ratio = (a: number, b: number) => `${round((a / b) * 100, 0)}%`;
  const lines: [string, (r: Row, name: string) => string][] = [
    [
      `Requests/s at saturation, median of ${ROUNDS} (min–max)`,
      (r) => `${r.rps} (${r.rpsMin}–${r.rpsMax})`,
    ],
    ["… vs bare proxy", (r, n) => n === "direct" ? "" : ratio(r.rps, bare.rps)],
    [
      `p50 / p99 latency at ${RATE} req/s (open loop), ms`,
      (r) => `${r.p50Ms.toFixed(2)} / ${r.p99Ms.toFixed(2)}`,
    ],
    [
      "… p99 added over bare proxy, ms",
      (r, n) => n === "direct" || n === "bare" ? "" : (r.p99Ms - bare.p99Ms).toFixed(2),
    ],
    ["Server CPU per request at saturation, ms", (r) => r.cpuMsPerRequest.toFixed(3)],
    [
      "… vs bare proxy",
      (r, n) => n === "direct" ? "" : ratio(r.cpuMsPerRequest, bare.cpuMsPerRequest),
    ],
    ["Peak RSS under load, MiB (idle)", (r) => `${r.peakRssMiB} (${r.idleRssMiB})`],
    ["Stream 100 MiB: peak RSS growth, MiB", (r) => String(r.streamRssGrowthMiB)],
    ["Stream 100 MiB: throughput, MiB/s", (r) => String(r.streamMiBps)],
    ["Upload 20 MiB: peak RSS growth, MiB", (r) => String(r.uploadRssGrowthMiB)],
    [
      "Stream time to first byte p50 / p99, ms",
      (r) => `${r.ttfbP50Ms.toFixed(2)} / ${r.ttfbP99Ms.toFixed(2)}`,
    ],
    [
      "… p50 added over bare proxy, ms",
      (r, n) => n === "direct" || n === "bare" ? "" : (r.ttfbP50Ms - bare.ttfbP50Ms).toFixed(2),
    ],
  ];
  const header = `| | ${names.map((n) => labels[n]).join(" | ")} |`;
  const rule = `|---|${names.map(() => "---:").join("|")}|`;
  return [
    header,
    rule,
    ...lines.map(([title, cell]) =>
      `| ${title} | ${names.map((n) => cell(results[n], n)).join(" | ")} |`
    ),
  ].join("\n");
}

/**
 * Runs a rotator (3 keys, or 10,000 with half cooling) under --cpu-prof at saturation and prints
 * the functions with the most self time.
 */
async function profile(mock: Server, big: boolean): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rotator-prof-" });
  const envFile = await Deno.makeTempFile({ suffix: ".env" });
  const keys = big
    ? Array.from({ length: BIG_POOL }, (_, i) => benchKey(i, i % 2 === 1))
    : [0, 1, 2].map((i) => benchKey(i, false));
  await Deno.writeTextFile(envFile, `API_KEYS=${keys.join(",")}\n`);
  const rotator = await startServer(
    "rotator-prof",
    ["--cpu-prof", `--cpu-prof-dir=${dir}`, ...ROTATOR_ARGS],
    rotatorEnv(mock.url, { ENV_FILE: envFile }),
  );
  if (big) await warmUpCooling(mock, rotator);
  await wrk(rotator.url + GENERATE, 2);
  const result = await wrk(rotator.url + GENERATE, SECONDS);
  assertAlive([rotator]);
  await rotator.stop();
  await Deno.remove(envFile);
  const file = [...Deno.readDirSync(dir)].find((e) => e.name.endsWith(".cpuprofile"));
  if (!file) throw new Error(`no .cpuprofile written in ${dir}`);
  const prof = JSON.parse(Deno.readTextFileSync(`${dir}/${file.name}`));
  interface Node {
    id: number;
    hitCount: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }
  // Only the samples of the measured phase: the last SECONDS before the process stopped.
  const hits = new Map<number, number>();
  let at = prof.startTime as number;
  const from = (prof.endTime as number) - (SECONDS - 0.5) * 1e6;
  (prof.samples as number[]).forEach((id, i) => {
    at += prof.timeDeltas[i];
    if (at >= from) hits.set(id, (hits.get(id) ?? 0) + 1);
  });
  const self = new Map<string, number>();
  let total = 0;
  for (const node of prof.nodes as Node[]) {
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url ? `${url.replace(/^.*\/(src|entries|ext)\//, "$1/")}:${lineNumber + 1}` : "";
    const name = `${functionName || "(anonymous)"} ${where}`.trim();
    const count = hits.get(node.id) ?? 0;
    self.set(name, (self.get(name) ?? 0) + count);
    total += count;
  }
  // Grouped: whose code the busy (non-idle) time went to.
  const groups = new Map<string, number>();
  const groupOf = (name: string) =>
    name.startsWith("(idle)")
      ? "idle"
      : / src\//.test(name)
      ? "rotator code (src/)"
      : / entries\//.test(name)
      ? "rotator entry (entries/)"
      : /^op_/.test(name)
      ? "runtime ops (Rust: sockets, fetch, http)"
      : /deno_fetch/.test(name)
      ? "fetch, Request, Response, Headers (JS)"
      : /06_streams/.test(name)
      ? "web streams (JS)"
      : /webidl/.test(name)
      ? "WebIDL argument checks"
      : /timers/.test(name)
      ? "timers"
      : name.startsWith("(garbage collector)")
      ? "garbage collector"
      : "other runtime JS";
  for (const [name, hits] of self) {
    groups.set(groupOf(name), (groups.get(groupOf(name)) ?? 0) + hits);
  }
  const busy = total - (groups.get("idle") ?? 0);
  console.log(`\nBusy time by owner (${big ? "rotator-10k" : "rotator-3"}):\n`);
  console.log("| share of busy time | owner |\n|---:|---|");
  for (
    const [group, hits] of [...groups].filter(([g]) => g !== "idle").sort((a, b) => b[1] - a[1])
  ) {
    console.log(`| ${round((hits / busy) * 100, 1)}% | ${group} |`);
  }
  const own = [...self].filter(([name]) => / src\//.test(name)).sort((a, b) => b[1] - a[1]);
  console.log(`\nRotator code, self time as a share of busy time:\n`);
  console.log("| share | function |\n|---:|---|");
  for (const [name, hits] of own.slice(0, 12)) {
    console.log(`| ${round((hits / busy) * 100, 1)}% | ${name} |`);
  }
  const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, 30);
  console.log(
    `\nCPU profile of ${big ? "rotator-10k" : "rotator-3"} at saturation ` +
      `(${round(result.rps, 0)} req/s), self time, top 30 of ${total} samples ` +
      `(${dir}/${file.name}):\n`,
  );
  console.log("| self % | function |\n|---:|---|");
  for (const [name, hits] of top) console.log(`| ${round((hits / total) * 100, 1)} | ${name} |`);
}

/**
 * CPU per request at saturation of the bare proxy with one more step each (bench/proxy_steps.ts),
 * the minimal key-injecting proxy and the rotator with 3 keys, in interleaved rounds: what each
 * step costs on this runtime, and what is left for the rotator's own work.
 */
async function decompose(mock: Server, servers: Server[]): Promise<void> {
  const proxy = async (name: string, script: string, env: Record<string, string> = {}) => {
    const server = await startServer(name, ["--allow-net", "--allow-env", script], {
      UPSTREAM: mock.url,
      ...env,
    });
    servers.push(server);
    return server;
  };
  const rows: [string, string, Server][] = [
    ["bare", "bare proxy (its answer returned as is)", await proxy("bare", "bench/bare_proxy.ts")],
    [
      "headers",
      "bare, the credential swapped in a copied `Headers`",
      await proxy("headers", "bench/proxy_steps.ts", { STEP: "headers" }),
    ],
    [
      "body",
      "… and the body read whole first, sent as bytes",
      await proxy("body", "bench/proxy_steps.ts", { STEP: "body" }),
    ],
    [
      "answer",
      "… or the answer read whole first, answered with its headers",
      await proxy("answer", "bench/proxy_steps.ts", { STEP: "answer" }),
    ],
    [
      "minimal",
      "minimal key-injecting proxy",
      await proxy("minimal", "bench/minimal_proxy.ts"),
    ],
  ];
  const rotator = await startServer(
    "rotator-3",
    ROTATOR_ARGS,
    rotatorEnv(mock.url, { API_KEYS: [0, 1, 2].map((i) => benchKey(i, false)).join(",") }),
  );
  servers.push(rotator);
  rows.push(["rotator3", "rotator, 3 keys", rotator]);
  const targets = rows.map(([name, label, server]) => ({ name, label, server, pid: server.pid }));
  console.error(`saturation, ${ROUNDS} interleaved rounds of ${SECONDS} s`);
  const saturation = await saturate(targets, mock);
  const bare = saturation.bare.cpuMsPerRequest;
  console.log("| proxy | CPU per request, ms | vs bare |\n|---|---:|---:|");
  for (const { name, label } of targets) {
    const cpu = saturation[name].cpuMsPerRequest;
    console.log(`| ${label} | ${cpu.toFixed(3)} | ${round((cpu / bare) * 100, 0)}% |`);
  }
  console.log(
    `\n${new Date().toISOString()}, Deno ${Deno.version.deno}, ${ROUNDS} rounds of ${SECONDS} s, ` +
      `medians; load average ${Deno.loadavg()[0]}`,
  );
}

async function main(): Promise<void> {
  const started = Date.now();
  const servers: Server[] = [];
  await pin(Deno.pid, CLIENT_CORE);
  const loadBefore = Deno.loadavg()[0];
  try {
    const mock = await startServer("mock", ["--allow-net", "--allow-env", "bench/mock.ts"]);
    servers.push(mock);
    if (PROFILE) {
      await profile(mock, false);
      await profile(mock, true);
      return;
    }
    if (DECOMPOSE) {
      await decompose(mock, servers);
      return;
    }
    const bare = await startServer("bare", ["--allow-net", "--allow-env", "bench/bare_proxy.ts"], {
      UPSTREAM: mock.url,
    });
    servers.push(bare);
    const minimal = await startServer(
      "minimal",
      ["--allow-net", "--allow-env", "bench/minimal_proxy.ts"],
      { UPSTREAM: mock.url },
    );
    servers.push(minimal);
    const small = await startServer(
      "rotator-3",
      ROTATOR_ARGS,
      rotatorEnv(mock.url, { API_KEYS: [0, 1, 2].map((i) => benchKey(i, false)).join(",") }),
    );
    servers.push(small);
    // 10,000 keys are ~400 KB: more than one environment variable may hold, so a .env file.
    const envFile = await Deno.makeTempFile({ suffix: ".env" });
    const keys = Array.from({ length: BIG_POOL }, (_, i) => benchKey(i, i % 2 === 1));
    await Deno.writeTextFile(envFile, `API_KEYS=${keys.join(",")}\n`);
    const big = await startServer(
      "rotator-10k",
      ROTATOR_ARGS,
      rotatorEnv(mock.url, { ENV_FILE: envFile }),
    );
    servers.push(big);
    console.error("warming up rotator-10k (learning 5,000 cooldowns)");
    await warmUpCooling(mock, big);
    await Deno.remove(envFile);

    const targets: Target[] = [
      { name: "direct", label: "upstream direct", server: mock, pid: mock.pid },
      { name: "bare", label: "bare Deno proxy", server: bare, pid: bare.pid },
      {
        name: "minimal",
        label: "minimal key-injecting proxy",
        server: minimal,
        pid: minimal.pid,
      },
      { name: "rotator3", label: "rotator, 3 keys", server: small, pid: small.pid },
      {
        name: "rotator10k",
        label: "rotator, 10,000 keys (5,000 cooling)",
        server: big,
        pid: big.pid,
      },
    ];
    console.error(`saturation, ${ROUNDS} interleaved rounds of ${SECONDS} s`);
    const saturation = await saturate(targets, mock);
    const results: Record<string, Row> = {};
    for (const target of targets) {
      results[target.name] = await measure(target, saturation[target.name]);
    }
    assertAlive(servers);
    const stats = await (await fetch(`${mock.url}/__bench/stats`)).json();
    if (stats.coolHitsAfterWarmup !== 0) {
      throw new Error(`the rotator sent ${stats.coolHitsAfterWarmup} requests to cooling keys`);
    }
    const labels = Object.fromEntries(targets.map((t) => [t.name, t.label]));
    console.log(table(results, labels));
    console.log(
      `\n${new Date().toISOString()}, Deno ${Deno.version.deno}, ${SECONDS} s per load phase, ` +
        `load average before ${loadBefore}, after ${Deno.loadavg()[0]}, ` +
        `${round((Date.now() - started) / 1000, 0)} s in all; requests to cooling keys after ` +
        `warm-up: ${stats.coolHitsAfterWarmup}`,
    );
    if (JSON_OUT) {
      await Deno.writeTextFile(
        JSON_OUT,
        JSON.stringify({ date: new Date().toISOString(), seconds: SECONDS, results }, null, 2),
      );
    }
  } finally {
    for (const server of servers.reverse()) await server.stop();
  }
}

if (import.meta.main) await main();
