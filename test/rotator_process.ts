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

/** Starts entries/deno.ts; resolves once its start-up line names the address. */
export async function spawnRotator(env: Record<string, string>): Promise<RotatorProcess> {
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
  let resolveUrl!: (url: string) => void;
  let rejectUrl!: (error: Error) => void;
  const url = new Promise<string>((resolve, reject) => {
    resolveUrl = resolve;
    rejectUrl = reject;
  });
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      for (const line of chunk.split("\n").filter(Boolean)) {
        output.push(line);
        if (line.includes('"msg":"started"')) resolveUrl(JSON.parse(line).address);
      }
    }
  };
  const reading = Promise.all([collect(child.stdout), collect(child.stderr)]);
  child.status.then((status) =>
    rejectUrl(new Error(`rotator exited (${status.code}) before listening:\n${output.join("\n")}`))
  );
  return {
    url: await url,
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
