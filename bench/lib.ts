/**
 * Plumbing the benchmarks share: start a server as its own process and learn its port, read a
 * process's CPU time and memory from /proc, and run the load generators (wrk from Debian for
 * saturation, bench/fixed_rate.ts for a fixed request rate) and parse what they print.
 *
 * Linux only (/proc); loopback only: every server listens on 127.0.0.1.
 */

export const DENO = new URL("../node_modules/deno/deno", import.meta.url).pathname;
export const ROOT = new URL("../", import.meta.url).pathname;
export const MODEL = "gemini-2.5-flash";
export const GENERATE = `/v1beta/models/${MODEL}:generateContent`;
export const STREAM = `/v1beta/models/${MODEL}:streamGenerateContent?alt=sse`;
export const BODY = JSON.stringify({ contents: [{ parts: [{ text: "Hello" }] }] });
export const TOKEN = "bench-access-token-0123456789";

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux x86). */
const USER_HZ = 100;

export interface Server {
  readonly name: string;
  readonly pid: number;
  readonly url: string;
  /** True when the process ended without stop(): the run's numbers are not valid. */
  readonly died: boolean;
  stop(): Promise<void>;
}

/**
 * Starts `deno run <args>` with `env` only (nothing inherited but PATH and HOME), waits for the
 * line that names its port (`{"port":N}` or the rotator's `started` log line), and keeps draining
 * its output so a chatty server never blocks on a full pipe.
 */
export async function startServer(
  name: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<Server> {
  const child = new Deno.Command(DENO, {
    args: ["run", ...args],
    cwd: ROOT,
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "", HOME: Deno.env.get("HOME") ?? "/tmp", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr: string[] = [];
  (async () => {
    for await (const line of lines(child.stderr)) stderr.push(line);
  })();
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start`)), 30_000);
    (async () => {
      let found = false;
      for await (const line of lines(child.stdout)) {
        if (found) continue; // keep draining
        const port = portOf(line);
        if (port !== undefined) {
          found = true;
          clearTimeout(timer);
          resolve(port);
        }
      }
      if (!found) {
        clearTimeout(timer);
        reject(new Error(`${name} exited before listening: ${stderr.join("\n").slice(0, 2000)}`));
      }
    })();
  });
  let stopping = false;
  let died = false;
  child.status.then((status) => {
    if (!stopping) {
      died = true;
      console.error(
        `${name} exited (${status.code}) unexpectedly:\n${stderr.slice(-40).join("\n")}`,
      );
    }
  });
  return {
    name,
    pid: child.pid,
    url: `http://127.0.0.1:${port}`,
    get died() {
      return died;
    },
    async stop() {
      stopping = true;
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      await child.status;
    },
  };
}

function portOf(line: string): number | undefined {
  try {
    const parsed = JSON.parse(line);
    if (typeof parsed.port === "number") return parsed.port;
    if (parsed.msg === "started" && typeof parsed.address === "string") {
      return Number(new URL(parsed.address).port);
    }
  } catch { /* not JSON */ }
  return undefined;
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffered = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    buffered += text;
    let newline;
    while ((newline = buffered.indexOf("\n")) !== -1) {
      yield buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
    }
  }
  if (buffered) yield buffered;
}

/** User + system CPU time of a process (all its threads), in ms. */
export function cpuMs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 1000 / USER_HZ;
}

/** Resident set size now and its peak (VmHWM), in MiB. */
export function memory(pid: number): { rss: number; peak: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)![1]);
  return { rss: kib("VmRSS") / 1024, peak: kib("VmHWM") / 1024 };
}

/** Resets VmHWM to the current RSS (clear_refs 5, Linux 4.0+), so the next peak is this phase's. */
export function resetPeak(pid: number): void {
  Deno.writeTextFileSync(`/proc/${pid}/clear_refs`, "5");
}

/**
 * Moves every thread of a process to one CPU core. With 2 cores, the process measured gets
 * core 1 to itself and everything else (load generator, mock, this script) shares core 0, which
 * makes runs far more repeatable than letting them fight over both.
 */
export async function pin(pid: number, core: number): Promise<void> {
  await run("taskset", ["-a", "-cp", String(core), String(pid)], false);
}

/** The core that load generators and clients run on. */
export const CLIENT_CORE = 0;
/** The core the server being measured runs on. */
export const SERVER_CORE = 1;

/** Throws when any server died during the run (its numbers would be meaningless). */
export function assertAlive(servers: readonly Server[]): void {
  const dead = servers.filter((server) => server.died).map((server) => server.name);
  if (dead.length > 0) throw new Error(`invalid run: ${dead.join(", ")} exited during it`);
}

/** Runs a command to completion; `onClientCore` pins it to CLIENT_CORE. */
export async function run(cmd: string, args: string[], onClientCore = true): Promise<string> {
  const argv = onClientCore ? ["-c", String(CLIENT_CORE), cmd, ...args] : args;
  const { stdout, stderr, success } = await new Deno.Command(onClientCore ? "taskset" : cmd, {
    args: argv,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(stdout);
  if (!success) throw new Error(`${cmd} failed: ${new TextDecoder().decode(stderr)}`);
  return out;
}

const WRK_SCRIPT = new URL("./post.lua", import.meta.url).pathname;

export interface WrkResult {
  readonly requests: number;
  readonly rps: number;
  readonly errors: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/** wrk 4.1 (Debian): closed loop, `connections` keep-alive connections, one thread. */
export async function wrk(url: string, seconds: number, connections = 50): Promise<WrkResult> {
  const out = await run("wrk", [
    "-t1",
    `-c${connections}`,
    `-d${seconds}s`,
    "--latency",
    "-s",
    WRK_SCRIPT,
    url,
  ]);
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  const ms = (re: RegExp) => {
    const m = re.exec(out);
    if (!m) return NaN;
    const value = Number(m[1]);
    return m[2] === "us" ? value / 1000 : m[2] === "s" ? value * 1000 : value;
  };
  const non2xx = num(/Non-2xx or 3xx responses: (\d+)/);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requests: num(/(\d+) requests in/),
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    errors: (Number.isNaN(non2xx) ? 0 : non2xx) +
      (socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0),
    p50Ms: ms(/50%\s+([\d.]+)(us|ms|s)/),
    p99Ms: ms(/99%\s+([\d.]+)(us|ms|s)/),
  };
}

export interface RateResult {
  readonly requests: number;
  readonly failed: number;
  /** Sends that left more than 1 ms after their slot (the client was behind). */
  readonly late: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** bench/fixed_rate.ts in its own process: `rate` evenly spaced requests per second (open loop). */
export async function fixedRate(url: string, rate: number, seconds: number): Promise<RateResult> {
  const out = await run(DENO, [
    "run",
    "--allow-net",
    new URL("./fixed_rate.ts", import.meta.url).pathname,
    url,
    String(rate),
    String(seconds),
  ]);
  return JSON.parse(out.trim().split("\n").at(-1)!);
}

/** The value after `--flag` in this script's arguments, if given. */
export function flagValue(flag: string): string | undefined {
  const i = Deno.args.indexOf(flag);
  return i === -1 ? undefined : Deno.args[i + 1];
}

/**
 * One generateContent POST with the benchmark's body: the time until its answer's body ended and
 * whether it was a 200, or undefined when the request failed.
 */
export async function timedGenerate(url: string): Promise<{ ms: number; ok: boolean } | undefined> {
  const sent = performance.now();
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "x-goog-api-key": TOKEN, "content-type": "application/json" },
      body: BODY,
    });
    await response.arrayBuffer();
    return { ms: performance.now() - sent, ok: response.status === 200 };
  } catch {
    return undefined;
  }
}

/**
 * Calls `send(i)` for i = 0 to count - 1 at `rate` a second, evenly spaced (open loop: a slow
 * answer delays no later send). Resolves to how many sends left more than 1 ms late.
 */
export async function openLoop(
  rate: number,
  count: number,
  send: (i: number) => void,
): Promise<number> {
  let late = 0;
  const start = performance.now() + 50;
  for (let i = 0; i < count; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (performance.now() - due > 1) late++;
    send(i);
  }
  return late;
}

/** The value at quantile q (0..1) of unsorted samples. */
export function quantile(samples: number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
