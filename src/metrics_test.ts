import assert from "node:assert/strict";
import { parsePrometheusText } from "../test/prom_text.ts";
import type { AttemptEvent, RequestEvent } from "./events.ts";
import { toPoolKeys } from "./keys.ts";
import { RotatorMetrics } from "./metrics.ts";
import { KeyPool } from "./pool.ts";

const NOW = Date.UTC(2026, 10, 25, 18, 0, 0);
const META = { version: "1.2.3", build: "abc123", entry: "test", platform: "test", startedAt: NOW };

async function setup(maxModels?: number) {
  const keys = await toPoolKeys([{ value: "AIzaSyKEY-ONE-xxxxxxxxxxxxxxxxxxxxxxxxxxx" }, {
    value: "AIzaSyKEY-TWO-xxxxxxxxxxxxxxxxxxxxxxxxxxx",
  }]);
  const pool = new KeyPool(keys);
  const metrics = new RotatorMetrics({
    pool,
    meta: META,
    storeKind: "memory",
    ...(maxModels ? { maxModels } : {}),
  });
  return { keys, pool, metrics };
}

function attempt(over: Partial<AttemptEvent>): AttemptEvent {
  return {
    keyId: "",
    project: "",
    model: "gemini-2.5-flash",
    route: "native",
    status: 200,
    result: "ok",
    latencyMs: 120,
    ...over,
  };
}

function request(over: Partial<RequestEvent>): RequestEvent {
  return {
    method: "POST",
    path: "/v1beta/models/gemini-2.5-flash:generateContent",
    route: "native",
    model: "gemini-2.5-flash",
    status: 200,
    attempts: 1,
    keyIds: [],
    answeredBy: "upstream",
    durationMs: 150,
    end: "complete",
    ...over,
  };
}

Deno.test("RotatorMetrics counts requests, attempts, retries and per-key 429s", async () => {
  const { keys, metrics } = await setup();
  const [one, two] = keys;
  metrics.attempt(attempt({ keyId: one.id, project: one.project, status: 429, result: "quota" }));
  metrics.attempt(attempt({ keyId: two.id, project: two.project, latencyMs: 800 }));
  metrics.request(request({ attempts: 2, keyIds: [one.id, two.id], firstByteMs: 900 }));
  metrics.request(request({ status: 429, attempts: 0, answeredBy: "rotator", reason: "X" }));

  const parsed = parsePrometheusText(metrics.render(NOW));
  const v = (name: string, labels?: Record<string, string>) => parsed.value(name, labels);
  assert.equal(
    v("gemini_rotator_requests_total", {
      route: "native",
      model: "gemini-2.5-flash",
      status: "200",
    }),
    1,
  );
  assert.equal(
    v("gemini_rotator_requests_total", {
      route: "native",
      model: "gemini-2.5-flash",
      status: "429",
    }),
    1,
  );
  assert.equal(
    v("gemini_rotator_upstream_attempts_total", { model: "gemini-2.5-flash", result: "quota" }),
    1,
  );
  assert.equal(v("gemini_rotator_retries_total", { model: "gemini-2.5-flash" }), 1);
  assert.equal(v("gemini_rotator_key_requests_total", { key: one.id }), 1);
  assert.equal(v("gemini_rotator_key_requests_total", { key: two.id }), 1);
  assert.equal(v("gemini_rotator_key_rate_limited_total", { key: one.id }), 1);
  assert.equal(v("gemini_rotator_key_rate_limited_total", { key: two.id }), undefined);
  assert.equal(v("gemini_rotator_upstream_latency_seconds_count"), 2);
  assert.equal(v("gemini_rotator_upstream_latency_seconds_bucket", { le: "0.25" }), 1);
  assert.equal(v("gemini_rotator_time_to_first_byte_seconds_bucket", { le: "1" }), 1);
  assert.equal(v("gemini_rotator_keys", { state: "ready" }), 2);
  assert.equal(
    v("gemini_rotator_build_info", {
      version: "1.2.3",
      build: "abc123",
      entry: "test",
      platform: "test",
      store: "memory",
    }),
    1,
  );
});

Deno.test("RotatorMetrics counts answers of substitute models and of fallback providers", async () => {
  const { metrics } = await setup();
  metrics.request(request({ requestedModel: "gemini-2.5-pro" }));
  metrics.request(request({ model: "gemini-2.5-pro", provider: "openrouter" }));
  const parsed = parsePrometheusText(metrics.render(NOW));
  assert.equal(
    parsed.value("gemini_rotator_model_substitutions_total", {
      requested: "gemini-2.5-pro",
      model: "gemini-2.5-flash",
    }),
    1,
  );
  assert.equal(
    parsed.value("gemini_rotator_fallback_answers_total", {
      provider: "openrouter",
      status: "200",
    }),
    1,
  );
});

Deno.test("RotatorMetrics caps model labels and folds the rest into 'other'", async () => {
  const { metrics } = await setup(2);
  for (const model of ["m1", "m2", "m3", "m4", ""]) metrics.request(request({ model }));
  // An unauthenticated caller names any model it likes: it must not take a label.
  metrics.request(request({ model: "junk", status: 401, reason: "ACCESS_TOKEN_INVALID" }));
  const parsed = parsePrometheusText(metrics.render(NOW));
  const models = new Set(
    parsed.samples.filter((s) => s.name === "gemini_rotator_requests_total").map((s) =>
      s.labels.model
    ),
  );
  assert.deepEqual([...models].sort(), ["m1", "m2", "none", "other"]);
  assert.equal(
    parsed.value("gemini_rotator_requests_total", {
      route: "native",
      model: "other",
      status: "200",
    }),
    2,
  );
});

Deno.test("RotatorMetrics keeps per-key series for pool keys only", async () => {
  const { keys, pool, metrics } = await setup();
  metrics.attempt(attempt({ keyId: "0123456789ab" }));
  metrics.attempt(attempt({ keyId: keys[0].id }));
  let parsed = parsePrometheusText(metrics.render(NOW));
  assert.deepEqual(
    parsed.samples.filter((s) => s.name === "gemini_rotator_key_requests_total").map((s) =>
      s.labels.key
    ),
    [keys[0].id],
  );
  // A key removed from the pool loses its series.
  pool.setKeys([keys[1]]);
  parsed = parsePrometheusText(metrics.render(NOW));
  assert.equal(parsed.value("gemini_rotator_key_requests_total", { key: keys[0].id }), undefined);
});

Deno.test("RotatorMetrics reports keys by state and the wait until capacity returns", async () => {
  const { keys, pool, metrics } = await setup();
  metrics.request(request({ model: "gemini-2.5-flash" }));
  metrics.request(request({ model: "gemini-2.5-pro" }));
  pool.addCooldown({
    project: keys[0].project,
    model: "gemini-2.5-flash",
    until: NOW + 30_000,
    window: "minute",
    reason: "RPM",
    setAt: NOW,
  });
  pool.addCooldown({
    project: keys[1].project,
    model: "gemini-2.5-flash",
    until: NOW + 45_000,
    window: "minute",
    reason: "RPM",
    setAt: NOW,
  });
  let parsed = parsePrometheusText(metrics.render(NOW));
  assert.equal(parsed.value("gemini_rotator_keys", { state: "cooling" }), 2);
  assert.equal(parsed.value("gemini_rotator_keys", { state: "ready" }), 0);
  assert.equal(parsed.value("gemini_rotator_next_key_recovery_seconds"), 30);
  assert.equal(
    parsed.value("gemini_rotator_model_capacity_wait_seconds", { model: "gemini-2.5-flash" }),
    30,
  );
  assert.equal(
    parsed.value("gemini_rotator_model_capacity_wait_seconds", { model: "gemini-2.5-pro" }),
    0,
  );
  for (const key of keys) {
    pool.addDisablement({
      scope: "key",
      id: key.id,
      reason: "API_KEY_INVALID",
      status: 400,
      since: NOW,
      recheckAt: null,
    });
  }
  parsed = parsePrometheusText(metrics.render(NOW));
  assert.equal(parsed.value("gemini_rotator_keys", { state: "disabled" }), 2);
  assert.equal(
    parsed.value("gemini_rotator_model_capacity_wait_seconds", { model: "gemini-2.5-pro" }),
    Infinity,
  );
});
