/**
 * Measures how long a cooldown learned by one rotator process takes to reach another process
 * on the same Deno KV file: process one gets a 429 for key A on a fresh model, then process
 * two's admin API is read every 2 ms until it shows A cooling for that model.
 *
 *   node_modules/deno/deno run -A bench/kv_propagation.ts [trials]
 */

import { fingerprint } from "../src/keys.ts";
import { ADMIN_TOKEN, testKey, TOKEN } from "../test/harness.ts";
import { startMockUpstream } from "../test/mock_upstream.ts";
import { spawnRotator } from "../test/rotator_process.ts";

const trials = Number(Deno.args[0] ?? 40);
const A = testKey("alpha");
const B = testKey("bravo");
const mock = startMockUpstream();
mock.script(A, { type: "error", fixture: "rpm" });
const dir = await Deno.makeTempDir({ prefix: "rotator-propagation-" });
const env = { API_KEYS: `${A},${B}`, GEMINI_API_BASE_URL: mock.url, KV_PATH: `${dir}/r.kv` };
const [one, two] = await Promise.all([spawnRotator(env), spawnRotator(env)]);
const id = await fingerprint(A);
const delays: number[] = [];
try {
  for (let i = 0; i < trials; i++) {
    const model = `model-${i}`;
    const response = await fetch(`${one.url}/v1beta/models/${model}:generateContent`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-goog-api-key": TOKEN },
      body: "{}",
    });
    await response.body?.cancel();
    const t0 = performance.now();
    for (;;) {
      const listed = await fetch(`${two.url}/admin/api/keys`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      }).then((r) => r.json());
      const key = listed.keys.find((k: { id: string }) => k.id === id);
      if (key.cooldowns.some((c: { model: string }) => c.model === model)) break;
      if (performance.now() - t0 > 5000) throw new Error(`trial ${i}: not seen in 5 s`);
      await new Promise((r) => setTimeout(r, 2));
    }
    delays.push(performance.now() - t0);
    // Desynchronise from the poll so the trials sample its whole interval.
    await new Promise((r) => setTimeout(r, 37 + Math.random() * 100));
  }
} finally {
  await Promise.all([one.stop(), two.stop()]);
  await mock.close();
  await Deno.remove(dir, { recursive: true });
}
delays.sort((a, b) => a - b);
const at = (q: number) => delays[Math.min(delays.length - 1, Math.floor(q * delays.length))];
console.log(JSON.stringify({
  trials,
  pollMs: 150,
  medianMs: Math.round(at(0.5)),
  p90Ms: Math.round(at(0.9)),
  maxMs: Math.round(delays.at(-1)!),
  minMs: Math.round(delays[0]),
}));
