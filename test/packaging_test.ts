/**
 * The packaging files name the same entry module and start flags as deno.json's start task, so
 * they cannot drift: Deno Deploy's `deploy` section, the Dockerfile, the systemd unit, the
 * compile task and every `deno compile` command in the deploy guide. Docker and systemd cannot
 * run here; what can is run: the files the Dockerfile copies, started with its CMD, answer its
 * HEALTHCHECK.
 */

import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import packageJson from "../package.json" with { type: "json" };
import { deployConfig, ROOT, startCommand } from "./start_task.ts";
import { baseEnv, runToExit, spawnUntilReady } from "./subprocess.ts";
import { testKey, TOKEN } from "./harness.ts";
import { startMockUpstream } from "./mock_upstream.ts";

interface Instruction {
  readonly op: string;
  readonly args: string;
}

/** Dockerfile instructions, with continuation lines joined and comments dropped. */
function dockerInstructions(text: string): Instruction[] {
  const joined = text.split("\n").filter((line) => !/^\s*#/.test(line)).join("\n")
    .replace(/\\\n/g, " ");
  return joined.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
    const [op, ...rest] = line.split(/\s+/);
    return { op: op.toUpperCase(), args: rest.join(" ") };
  });
}

const dockerfile = dockerInstructions(await Deno.readTextFile(`${ROOT}/Dockerfile`));
const unit = await Deno.readTextFile(`${ROOT}/deploy/gemini-key-rotator.service`);

function only(op: string): string {
  const found = dockerfile.filter((i) => i.op === op);
  assert.equal(found.length, 1, `exactly one ${op} in the Dockerfile`);
  return found[0].args;
}

/** Checks a `deno compile` command line: the start task's flags, then the entry module last. */
function assertCompileCommand(command: string) {
  const { flags, entry } = startCommand();
  const words = command.trim().split(/\s+/);
  assert.equal(words.at(-1), entry, `${command}: compiles ${entry}`);
  for (const flag of flags) assert.ok(words.includes(flag), `${command}: has ${flag}`);
  const extra = words.filter((w) => w.startsWith("--allow") && !flags.includes(w));
  assert.deepEqual(extra, [], `${command}: no permissions beyond the start task's`);
}

Deno.test("deno.json's deploy section names the start task's entry, in the current Deploy's keys only", () => {
  const deploy = deployConfig() as Record<string, unknown>;
  assert.deepEqual(deploy.runtime, { type: "dynamic", entrypoint: startCommand().entry });
  // deployctl's keys (Deploy Classic) share the `deploy` name and must not come back.
  for (const classic of ["project", "entrypoint", "include", "exclude"]) {
    assert.ok(!(classic in deploy), `no deployctl-only key deploy.${classic}`);
  }
});

Deno.test("the Dockerfile runs the start task's command as a non-root user on the pinned Deno", () => {
  const { flags, entry } = startCommand();
  assert.equal(only("FROM"), `denoland/deno:${packageJson.devDependencies.deno}`);
  assert.deepEqual(JSON.parse(only("CMD")), ["run", ...flags, entry]);
  assert.ok(
    dockerfile.some((i) => i.op === "RUN" && i.args === `deno cache ${entry}`),
    "the module graph is cached at build time",
  );
  assert.equal(only("USER"), "deno");
  assert.equal(only("WORKDIR"), "/app");
  assert.deepEqual(JSON.parse(only("VOLUME")), ["/app/data"], "KV state (./data/) on a volume");
  assert.match(only("HEALTHCHECK"), /\/healthz/);
});

Deno.test("the files the Dockerfile copies, started with its CMD, pass its HEALTHCHECK", async () => {
  const app = await Deno.makeTempDir();
  const mock = startMockUpstream();
  try {
    for (const { args } of dockerfile.filter((i) => i.op === "COPY")) {
      const [source] = args.split(/\s+/);
      const from = `${ROOT}/${source.replace(/\/$/, "")}`;
      await new Deno.Command("cp", { args: ["-R", from, `${app}/`] }).output();
    }
    const env: Record<string, string> = { ...baseEnv() };
    for (const { args } of dockerfile.filter((i) => i.op === "ENV")) {
      for (const [, name, value] of args.matchAll(/(\w+)=(\S+)/g)) env[name] = value;
    }
    const cmd: string[] = JSON.parse(only("CMD"));
    const child = await spawnUntilReady({
      args: cmd,
      env: {
        ...env,
        API_KEYS: testKey("alpha"),
        ACCESS_TOKEN: TOKEN,
        GEMINI_API_BASE_URL: mock.url,
        PORT: "0",
      },
      cwd: app,
      ready: /"msg":"started".*"address":"http:\/\/[^"]+:(\d+)"/,
    });
    const healthcheck: string[] = JSON.parse(only("HEALTHCHECK").replace(/^.*?CMD\s+/, ""));
    assert.equal(healthcheck[0], "deno");
    let status;
    try {
      const healthy = await runToExit(healthcheck.slice(1), { ...env, PORT: child.ready });
      assert.equal(healthy.code, 0, `healthy while serving:\n${healthy.output}`);
    } finally {
      status = await child.stop();
    }
    assert.equal(status.code, 0);
    const down = await runToExit(healthcheck.slice(1), { ...env, PORT: child.ready });
    assert.equal(down.code, 1, "unhealthy once stopped");
  } finally {
    await mock.close();
    await Deno.remove(app, { recursive: true });
  }
});

Deno.test("the systemd unit's ExecStart is the start task's command, hardened, as a throwaway user", () => {
  const { flags, entry } = startCommand();
  const exec = /^ExecStart=(.+)$/m.exec(unit)?.[1].trim().split(/\s+/) ?? [];
  const [deno, run, ...rest] = exec;
  assert.match(deno, /\/deno$/);
  assert.equal(run, "run");
  const config = rest.indexOf("--config");
  assert.ok(config >= 0, "--config names the checkout's deno.json");
  const codeDir = rest[config + 1].replace(/\/deno\.json$/, "");
  const withoutConfig = rest.filter((_, i) => i !== config && i !== config + 1);
  assert.deepEqual(withoutConfig, [...flags, `${codeDir}/${entry}`]);
  for (
    const line of [
      "DynamicUser=yes",
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "CapabilityBoundingSet=",
      "StateDirectory=gemini-key-rotator",
    ]
  ) {
    assert.match(unit, new RegExp(`^${line}$`, "m"));
  }
  assert.doesNotMatch(unit, /^MemoryDenyWriteExecute=yes/m, "V8's JIT needs writable code pages");
});

Deno.test("the compile task and every deno compile command in the deploy guide match the start task", async () => {
  assertCompileCommand(denoJson.tasks.compile);
  const guide = await Deno.readTextFile(`${ROOT}/docs/deploy.md`);
  let inCode = false;
  const commands: string[] = [];
  for (const line of guide.split("\n")) {
    if (/^\s*```/.test(line)) inCode = !inCode;
    else if (inCode && /\bdeno compile\b/.test(line)) commands.push(line);
  }
  assert.ok(commands.length > 0, "the guide shows deno compile commands");
  for (const command of commands) assertCompileCommand(command.replace(/^.*?deno compile/, ""));
});
