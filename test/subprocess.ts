/**
 * Runs a rotator entry as a child process, as its platform would, and waits for the line that
 * says it is listening (an event, not a sleep). Output is collected for assertions and for the
 * failure message when the child never becomes ready.
 */

export interface Child {
  /** The first capture group of the ready pattern (e.g. the URL). */
  readonly ready: string;
  /** The child's process id (its /proc entry, for memory readings). */
  readonly pid: number;
  /** Everything the child wrote so far, stdout and stderr interleaved by line. */
  output(): string;
  /** Sends `signal` and waits for the exit. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

export interface SpawnOptions {
  readonly args: readonly string[];
  readonly env: Record<string, string>;
  readonly cwd?: string;
  /** Matched against each output line; its first group becomes `ready`. */
  readonly ready: RegExp;
  /** Upper bound for start-up (not a synchronisation sleep: the ready line ends the wait). */
  readonly timeoutMs?: number;
}

/** The environment a child needs to find Deno's cache, without the parent's other variables. */
export function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return { ...env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" };
}

/** Spawns the child and resolves once a line matches `ready` (rejects if it exits first). */
export async function spawnUntilReady(options: SpawnOptions): Promise<Child> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...options.args],
    env: options.env,
    clearEnv: true,
    ...(options.cwd ? { cwd: options.cwd } : {}),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  let onLine: ((line: string) => void) | undefined;
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let buffered = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      buffered += text;
      const parts = buffered.split("\n");
      buffered = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        onLine?.(line);
      }
    }
    if (buffered) {
      lines.push(buffered);
      onLine?.(buffered);
    }
  };
  const drained = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const output = () => lines.join("\n");

  const timeoutMs = options.timeoutMs ?? 30_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const ready = await new Promise<string>((resolve, reject) => {
      for (const line of lines) {
        const match = options.ready.exec(line);
        if (match) return resolve(match[1]);
      }
      onLine = (line) => {
        const match = options.ready.exec(line);
        if (match) resolve(match[1]);
      };
      child.status.then((status) =>
        reject(new Error(`exited with ${status.code} before it was ready:\n${output()}`))
      );
      timer = setTimeout(
        () => reject(new Error(`not ready after ${timeoutMs} ms:\n${output()}`)),
        timeoutMs,
      );
    });
    return {
      ready,
      pid: child.pid,
      output,
      async stop(signal: Deno.Signal = "SIGTERM") {
        try {
          child.kill(signal);
        } catch {
          // Already exited.
        }
        const status = await child.status;
        await drained;
        return status;
      },
    };
  } catch (error) {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await child.status;
    await drained;
    throw error;
  } finally {
    clearTimeout(timer);
    onLine = undefined;
  }
}

/** Runs a child to completion and returns its exit code and combined output. */
export async function runToExit(
  args: readonly string[],
  env: Record<string, string>,
  cwd?: string,
): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [...args],
    env,
    clearEnv: true,
    ...(cwd ? { cwd } : {}),
    stdin: "null",
    signal: AbortSignal.timeout(30_000),
  }).output();
  const decoder = new TextDecoder();
  return { code, output: decoder.decode(stdout) + decoder.decode(stderr) };
}
