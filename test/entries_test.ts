/**
 * Every entry module serves a real request against the mock upstream, run the way its platform
 * runs it, so no entry can rot: entries/deno.ts as a process with the start task's flags (Deno
 * CLI, Docker, systemd, Deno Deploy), entries/supabase.ts under `deno serve` (Supabase runs the
 * same `export default { fetch }`), entries/netlify.ts called as Netlify calls it.
 */

import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import { edgeHandler } from "../entries/edge.ts";
import { withoutFunctionName } from "../entries/supabase.ts";
import { fingerprint } from "../src/keys.ts";
import { testKey, TOKEN } from "./harness.ts";
import { startMockUpstream } from "./mock_upstream.ts";
import { baseEnv, runToExit, spawnUntilReady } from "./subprocess.ts";
import { ROOT, spawnStartTask, startCommand, STARTED_LINE } from "./start_task.ts";

const A = testKey("alpha");
const GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent";

function generate(url: string): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", "x-goog-api-key": TOKEN },
    body: JSON.stringify({ contents: [{ parts: [{ text: "Hi" }] }] }),
  });
}

/** The rotator's variables for a child process whose upstream is the mock. */
function rotatorEnv(upstream: string): Record<string, string> {
  return { ...baseEnv(), API_KEYS: A, ACCESS_TOKEN: TOKEN, GEMINI_API_BASE_URL: upstream };
}

Deno.test("entries/deno.ts started as the start task starts it serves, reports itself and stops on SIGTERM", async () => {
  const mock = startMockUpstream();
  const cwd = await Deno.makeTempDir();
  try {
    const child = await spawnStartTask(
      { ...rotatorEnv(mock.url), HOST: "127.0.0.1", PORT: "0" },
      cwd,
    );
    let status;
    try {
      // One start-up line says what runs: version, address, keys by fingerprint, auth, store.
      const startedLine = child.output().split("\n").find((l) => l.includes('"msg":"started"'))!;
      const started = JSON.parse(startedLine);
      assert.equal(started.version, denoJson.version);
      assert.equal(started.address, child.ready);
      assert.equal(started.keys, 1);
      assert.deepEqual(started.fingerprints, [await fingerprint(A)]);
      assert.equal(started.auth, "1 access token(s)");
      assert.equal(started.store, "kv");
      assert.ok(!startedLine.includes(A) && !startedLine.includes(TOKEN), "no key or token");
      const health = await (await fetch(`${child.ready}/healthz`)).json();
      assert.equal(health.entry, "entries/deno.ts");
      assert.equal(health.platform, "deno");
      assert.equal(health.version, denoJson.version);
      const response = await generate(`${child.ready}${GENERATE}`);
      assert.equal(response.status, 200);
      assert.match(await response.text(), /Hello from the mock/);
      assert.equal(mock.requestsFor(A).length, 1);
    } finally {
      status = await child.stop("SIGTERM");
    }
    assert.equal(status.code, 0, `graceful shutdown:\n${child.output()}`);
  } finally {
    await mock.close();
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("entries/deno.ts runs without deno.json's unstable flags, as Deno Deploy runs it", async () => {
  const mock = startMockUpstream();
  const cwd = await Deno.makeTempDir();
  try {
    const child = await spawnUntilReady({
      // --no-config: no "unstable" list (Deploy takes none); KV is Deploy's own, so memory here.
      args: ["run", "--no-config", "--allow-all", `${ROOT}/entries/deno.ts`],
      env: { ...rotatorEnv(mock.url), HOST: "127.0.0.1", PORT: "0", STATE: "memory" },
      cwd,
      ready: STARTED_LINE,
    });
    try {
      const response = await generate(`${child.ready}${GENERATE}`);
      assert.equal(response.status, 200);
      assert.match(await response.text(), /Hello from the mock/);
      const stream = await fetch(
        `${child.ready}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse`,
        {
          method: "POST",
          headers: { "x-goog-api-key": TOKEN },
          body: "{}",
        },
      );
      assert.match(await stream.text(), /^data: /);
    } finally {
      await child.stop("SIGTERM");
    }
  } finally {
    await mock.close();
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("entries/deno.ts takes its whole configuration from .env, the store's variables too", async () => {
  const mock = startMockUpstream();
  const cwd = await Deno.makeTempDir();
  try {
    const dotenv = { ...rotatorEnv(mock.url), HOST: "127.0.0.1", PORT: "0", STATE: "memory" };
    await Deno.writeTextFile(
      `${cwd}/.env`,
      Object.entries(dotenv).filter(([name]) => !(name in baseEnv()))
        .map(([name, value]) => `${name}=${value}`).join("\n") + "\n",
    );
    const child = await spawnStartTask(baseEnv(), cwd);
    try {
      const health = await (await fetch(`${child.ready}/healthz`)).json();
      assert.equal(health.store, "memory", "STATE=memory in .env was followed");
      const response = await generate(`${child.ready}${GENERATE}`);
      assert.equal(response.status, 200);
      await response.body?.cancel();
    } finally {
      await child.stop("SIGTERM");
    }
    const made = [...Deno.readDirSync(cwd)].map((e) => e.name);
    assert.deepEqual(made, [".env"], "no KV file was created");
  } finally {
    await mock.close();
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("entries/deno.ts on Deno Deploy (DENO_DEPLOYMENT_ID set) refuses to start without ACCESS_TOKEN", async () => {
  const cwd = await Deno.makeTempDir();
  const { flags, entry } = startCommand();
  try {
    const { code, output } = await runToExit(
      ["run", ...flags, "--config", `${ROOT}/deno.json`, `${ROOT}/${entry}`],
      { ...baseEnv(), API_KEYS: A, DENO_DEPLOYMENT_ID: "test-deployment" },
      cwd,
    );
    assert.equal(code, 1);
    assert.match(output, /Cannot start: ACCESS_TOKEN is not set, and this platform serves/);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("entries/supabase.ts under deno serve strips the function name and proxies", async () => {
  const mock = startMockUpstream();
  const { flags } = startCommand();
  try {
    const child = await spawnUntilReady({
      args: [
        "serve",
        ...flags,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        `${ROOT}/entries/supabase.ts`,
      ],
      env: { ...rotatorEnv(mock.url), DENO_DEPLOYMENT_ID: "sb-deployment-1" },
      ready: /Listening on (http:\/\/[^/\s]+)/,
    });
    try {
      const base = `${child.ready}/gemini-rotator`;
      const health = await (await fetch(`${base}/healthz`)).json();
      assert.equal(health.entry, "entries/supabase.ts");
      assert.equal(health.platform, "supabase");
      assert.equal(health.build, "sb-deployment-1");
      assert.equal(health.store, "memory");
      const response = await generate(`${base}${GENERATE}`);
      assert.equal(response.status, 200);
      assert.match(await response.text(), /Hello from the mock/);
      assert.equal(mock.requests[0].path, GENERATE, "the function name never reaches Google");
    } finally {
      await child.stop();
    }
  } finally {
    await mock.close();
  }
});

Deno.test("withoutFunctionName() drops /<name> and a leading /functions/v1", () => {
  const strip = (path: string) => withoutFunctionName(new URL(`https://x.test${path}?alt=sse`));
  assert.equal(strip("/gemini-rotator/v1beta/models").href, "https://x.test/v1beta/models?alt=sse");
  assert.equal(strip("/functions/v1/rot/healthz").pathname, "/healthz");
  assert.equal(strip("/gemini-rotator").pathname, "/");
});

Deno.test("entries/netlify.ts answers as a Netlify edge function, reading Netlify.env", async () => {
  const mock = startMockUpstream();
  const env = {
    API_KEYS: A,
    ACCESS_TOKEN: TOKEN,
    GEMINI_API_BASE_URL: mock.url,
    LOG_REQUESTS: "false",
  };
  const global = globalThis as { Netlify?: unknown };
  global.Netlify = {
    env: { toObject: () => ({ ...env }), get: (name: string) => env[name as keyof typeof env] },
  };
  try {
    const netlify = await import("../entries/netlify.ts");
    assert.deepEqual(netlify.config, { path: "/*" });
    const context = { deploy: { id: "netlify-deploy-7" } };
    const health =
      await (await netlify.default(new Request("https://site.example/healthz"), context)).json();
    assert.equal(health.entry, "entries/netlify.ts");
    assert.equal(health.platform, "netlify");
    assert.equal(health.build, "netlify-deploy-7");
    const response = await netlify.default(
      new Request(`https://site.example${GENERATE}`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-goog-api-key": TOKEN },
        body: JSON.stringify({ contents: [{ parts: [{ text: "Hi" }] }] }),
      }),
      context,
    );
    assert.equal(response.status, 200);
    assert.match(await response.text(), /Hello from the mock/);
    assert.equal(mock.requestsFor(A).length, 1);
  } finally {
    delete global.Netlify;
    await mock.close();
  }
});

Deno.test("an edge entry without ACCESS_TOKEN answers every request with a 503 naming the variable", async () => {
  const handle = edgeHandler({
    entry: "entries/test.ts",
    platform: "netlify",
    env: () => ({ API_KEYS: A }),
  });
  const errors: unknown[] = [];
  const consoleError = console.error;
  console.error = (...args: unknown[]) => errors.push(args);
  try {
    for (let i = 0; i < 2; i++) {
      const response = await handle(
        new Request(`https://site.example${GENERATE}`, { method: "POST", body: "{}" }),
      );
      assert.equal(response.status, 503);
      const body = await response.json();
      assert.equal(body.error.status, "UNAVAILABLE");
      assert.match(body.error.message, /ACCESS_TOKEN is not set/);
    }
    assert.equal(errors.length, 1, "the start-up error is logged once, not per request");
  } finally {
    console.error = consoleError;
  }
});
