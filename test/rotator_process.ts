/**
 * Runs the real Deno entry (entries/deno.ts, as `deno task start` does) as a child process on a
 * free port, with a clean environment: for tests and measurements that need separate processes.
 */

import { ADMIN_TOKEN, TOKEN } from "./harness.ts";

const ENTRY = new URL("../entries/deno.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

export interface RotatorProcess {
  readonly url: string;
  /** Every line it printed (stdout and stderr). */
  readonly output: string[];
  /** SIGTERM (a graceful shutdown), then waits for the exit. */
  stop(): Promise<void>;
}

/**
 * Starts entries/deno.ts; resolves once its start-up line names the address. A child killed by
 * a signal before it listens is started once more: this code sends none before then, and under
 * heavy parallel load a fresh child was seen to die of SIGTERM within milliseconds (cause not
 * found; it never happened to a child that was listening).
 */
export async function spawnRotator(env: Record<string, string>): Promise<RotatorProcess> {
  try {
    return await spawnOnce(env);
  } catch (error) {
    if (!(error instanceof KilledBeforeListening)) throw error;
    return await spawnOnce(env);
  }
}

class KilledBeforeListening extends Error {}

async function spawnOnce(env: Record<string, string>): Promise<RotatorProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-write",
      "--config",
      CONFIG,
      ENTRY,
    ],
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "",
      ENV_FILE: "/dev/null",
      HOST: "127.0.0.1",
      PORT: "0",
      ACCESS_TOKEN: TOKEN,
      ADMIN_TOKEN,
      RETRY_BACKOFF_MS: "1",
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output: string[] = [];
  const listening = Promise.withResolvers<string>();
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    let pending = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const lines = (pending + chunk).split("\n");
      pending = lines.pop()!;
      for (const line of lines.filter(Boolean)) {
        output.push(line);
        if (line.includes('"msg":"started"')) listening.resolve(JSON.parse(line).address);
      }
    }
    if (pending) output.push(pending);
  };
  const reading = Promise.all([collect(child.stdout), collect(child.stderr)]);
  child.status.then(async (status) => {
    await reading.catch(() => {});
    const why = `rotator exited (${status.code}${status.signal ? `, ${status.signal}` : ""}) ` +
      `before listening:\n${output.join("\n")}`;
    listening.reject(status.signal ? new KilledBeforeListening(why) : new Error(why));
  });
  return {
    url: await listening.promise,
    output,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      await child.status;
      await reading;
    },
  };
}
