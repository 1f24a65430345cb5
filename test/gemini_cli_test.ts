/**
 * The real Gemini CLI (npm @google/gemini-cli), headless, pointed at the rotator with
 * GOOGLE_GEMINI_BASE_URL and the access token as GEMINI_API_KEY. Settings keep it offline and
 * fast (see docs/user-guide.md): no telemetry, no relaunch, two attempts at most.
 */

import assert from "node:assert/strict";
import { type Rotator, startRotator, testKey, TOKEN } from "./harness.ts";

const CLI = new URL("../node_modules/@google/gemini-cli/bundle/gemini.js", import.meta.url);
const A = testKey("cli-a");
const B = testKey("cli-b");

async function runCli(rotator: Rotator, prompt: string) {
  const home = await Deno.makeTempDir({ prefix: "gemini-cli-home-" });
  const work = await Deno.makeTempDir({ prefix: "gemini-cli-work-" });
  await Deno.mkdir(`${home}/.gemini`, { recursive: true });
  await Deno.mkdir(`${home}/tmp`, { recursive: true });
  await Deno.writeTextFile(
    `${home}/.gemini/settings.json`,
    JSON.stringify({
      security: { auth: { selectedType: "gemini-api-key" }, folderTrust: { enabled: false } },
      privacy: { usageStatisticsEnabled: false },
      telemetry: { enabled: false },
      general: { enableAutoUpdate: false, enableAutoUpdateNotification: false, maxAttempts: 2 },
      ide: { enabled: false },
      tools: { useRipgrep: false },
    }),
  );
  try {
    const output = await new Deno.Command("node", {
      args: [CLI.pathname, "-m", "gemini-2.5-flash", "-p", prompt],
      cwd: work,
      clearEnv: true,
      env: {
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        HOME: home,
        TMPDIR: `${home}/tmp`,
        GEMINI_CLI_NO_RELAUNCH: "true",
        GEMINI_CLI_TRUST_WORKSPACE: "true",
        COLORTERM: "truecolor",
        GOOGLE_GEMINI_BASE_URL: rotator.url,
        GEMINI_API_KEY: TOKEN,
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    return {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
  } finally {
    await Deno.remove(home, { recursive: true });
    await Deno.remove(work, { recursive: true });
  }
}

Deno.test("Gemini CLI: answers through the rotator; a rate-limited key is invisible", async () => {
  const rotator = await startRotator({ keys: [A, B] });
  rotator.mock.script(A, { type: "error", fixture: "rpm" });
  try {
    const result = await runCli(rotator, "say hi");
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), "Hello from the mock");
    const keys = rotator.mock.requests.map((r) => r.key);
    assert.deepEqual(keys, [A, B], "one rotation, no client-side retry");
    const [request] = rotator.mock.requests;
    assert.match(request.path, /:streamGenerateContent$/);
    assert.match(request.headers.get("user-agent") ?? "", /GeminiCLI/);
  } finally {
    await rotator.close();
  }
});

Deno.test("Gemini CLI: a pool spent for the day stops the CLI at once instead of 10 retries", async () => {
  const rotator = await startRotator({ keys: [A] });
  rotator.mock.script(A, { type: "error", fixture: "rpd" });
  try {
    const result = await runCli(rotator, "say hi");
    assert.notEqual(result.code, 0);
    // Google's own per-day body (with a 38 s retryDelay) is what the rotator learned from; it
    // answers the CLI with its own 429 whose RetryInfo (hours, until midnight Pacific) exceeds
    // the CLI's 300 s limit, so the CLI gives up instead of retrying.
    const served = rotator.logs.filter((line) => JSON.parse(line).msg === "request");
    assert.equal(served.length, 1, "the CLI did not retry");
    assert.equal(rotator.mock.requests.length, 1);
    assert.match(result.stderr + result.stdout, /rate-limited|quota|429/i);
  } finally {
    await rotator.close();
  }
});
