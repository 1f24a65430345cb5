import assert from "node:assert/strict";
import { ManualClock, settle } from "../../test/manual_clock.ts";
import type { AttemptEvent, RequestEvent } from "../events.ts";
import { toPoolKeys } from "../keys.ts";
import { silentLogger } from "../log.ts";
import { KeyPool } from "../pool.ts";
import { type Alert, AlertWatcher, mergeAlerts } from "./watch.ts";

const MODEL = "gemini-2.5-flash";
const SECOND = 1000;
const MINUTE = 60 * SECOND;

async function setup(options: { debounceMs?: number; minIntervalMs?: number } = {}) {
  const clock = new ManualClock();
  const keys = await toPoolKeys([
    { value: "AIzaSyWATCH-ONE-xxxxxxxxxxxxxxxxxxxxxxxxxx" },
    { value: "AIzaSyWATCH-TWO-xxxxxxxxxxxxxxxxxxxxxxxxxx", label: "team laptop" },
  ]);
  const pool = new KeyPool(keys);
  const sent: { alerts: readonly Alert[]; dropped: number; at: number }[] = [];
  const watcher = new AlertWatcher({
    pool,
    clock,
    log: silentLogger,
    debounceMs: options.debounceMs ?? 10 * SECOND,
    minIntervalMs: options.minIntervalMs ?? 5 * MINUTE,
    send: (alerts, dropped) => sent.push({ alerts, dropped, at: clock.now() }),
  });
  const coolAll = (until: number) => {
    for (const key of keys) {
      pool.addCooldown({
        project: key.project,
        model: MODEL,
        until,
        window: "minute",
        reason: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
        setAt: clock.now(),
      });
    }
  };
  return { clock, keys, pool, watcher, sent, coolAll };
}

function exhausted(model = MODEL): RequestEvent {
  return {
    method: "POST",
    path: `/v1beta/models/${model}:generateContent`,
    route: "native",
    model,
    status: 429,
    attempts: 0,
    keyIds: [],
    answeredBy: "rotator",
    reason: "ALL_KEYS_COOLING",
    durationMs: 1,
    end: "answered",
  };
}

function attempt(over: Partial<AttemptEvent>): AttemptEvent {
  return {
    keyId: "",
    project: "",
    model: MODEL,
    route: "native",
    status: 200,
    result: "ok",
    latencyMs: 10,
    ...over,
  };
}

Deno.test("AlertWatcher: a storm of ALL_KEYS_COOLING answers sends one message", async () => {
  const { clock, watcher, sent, coolAll } = await setup();
  coolAll(clock.now() + 42 * SECOND);
  for (let i = 0; i < 300; i++) watcher.request(exhausted());
  await clock.advance(10 * SECOND - 1);
  assert.equal(sent.length, 0, "held for the debounce window");
  await clock.advance(1);
  assert.equal(sent.length, 1);
  const [alert] = sent[0].alerts;
  assert.equal(sent[0].alerts.length, 1);
  assert.equal(alert.kind, "model_exhausted");
  if (alert.kind !== "model_exhausted") return;
  assert.equal(alert.model, MODEL);
  assert.equal(alert.window, "minute");
  assert.equal(alert.keys, 2);
  assert.equal(alert.recoversAt, clock.now() - 10 * SECOND + 42 * SECOND);
  watcher.close();
});

Deno.test("AlertWatcher: recovery is noticed when the first key is due back, sent after the minimum interval", async () => {
  const { clock, watcher, sent, coolAll } = await setup();
  const start = clock.now();
  coolAll(start + 42 * SECOND);
  watcher.request(exhausted());
  await clock.advance(42 * SECOND);
  assert.equal(sent.length, 1);
  assert.deepEqual(watcher.exhaustedModels(), [], "the pool has a key again at 42 s");
  // The recovery waits out the minimum interval after the first message (sent at 10 s).
  await clock.advance(5 * MINUTE - 32 * SECOND - 1);
  assert.equal(sent.length, 1);
  await clock.advance(1);
  assert.equal(sent.length, 2);
  assert.equal(sent[1].at, start + 10 * SECOND + 5 * MINUTE);
  const [recovered] = sent[1].alerts;
  assert.equal(recovered.kind, "model_recovered");
  if (recovered.kind === "model_recovered") assert.equal(recovered.downSince, start);
  assert.equal(clock.pending, 0, "no timer left once nothing is pending");
  watcher.close();
});

Deno.test("AlertWatcher: a model that flaps within one interval gives one merged alert", async () => {
  const { clock, keys, watcher, sent, coolAll } = await setup({ debounceMs: 0 });
  coolAll(clock.now() + 5 * SECOND);
  watcher.request(exhausted());
  await clock.advance(0);
  assert.equal(sent.length, 1, "the first alert goes out at once");
  // A fallback provider's answer is not the pool recovering.
  watcher.attempt(attempt({ result: "ok", keyId: "provider-key" }));
  for (let i = 0; i < 3; i++) {
    watcher.attempt(attempt({ result: "ok", keyId: keys[0].id })); // a key served the model
    watcher.request(exhausted()); // dry again
  }
  watcher.attempt(attempt({ result: "ok", keyId: keys[0].id }));
  await clock.advance(5 * MINUTE);
  assert.equal(sent.length, 2);
  assert.equal(sent[1].alerts.length, 1);
  const [merged] = sent[1].alerts;
  assert.equal(merged.kind, "model_recovered");
  if (merged.kind === "model_recovered") assert.equal(merged.episodes, 3);
  watcher.close();
});

Deno.test("AlertWatcher: a rejected key is reported once, with the reason the proxy recorded", async () => {
  const { clock, keys, pool, watcher, sent } = await setup({ debounceMs: 0 });
  const [key] = keys;
  for (let i = 0; i < 5; i++) {
    watcher.attempt(
      attempt({ keyId: key.id, project: key.project, status: 403, result: "key_rejected" }),
    );
    // What the proxy does right after reporting the attempt, in the same synchronous run.
    pool.addDisablement({
      scope: "key",
      id: key.id,
      reason: "LEAKED",
      status: 403,
      since: clock.now(),
      recheckAt: null,
    });
  }
  await clock.advance(0);
  assert.equal(sent.length, 1);
  assert.deepEqual(sent[0].alerts, [{
    kind: "key_disabled",
    at: clock.now(),
    scope: "key",
    id: key.id,
    keyIds: [key.id],
    reason: "LEAKED",
    status: 403,
    recheckAt: null,
  }]);
  watcher.close();
});

Deno.test("AlertWatcher: a project-wide disablement names every key of the project", async () => {
  const clock = new ManualClock();
  const keys = await toPoolKeys([
    { value: "AIzaSyPROJ-ONE-xxxxxxxxxxxxxxxxxxxxxxxxxxx", project: "p1" },
    { value: "AIzaSyPROJ-TWO-xxxxxxxxxxxxxxxxxxxxxxxxxxx", project: "p1" },
  ]);
  const pool = new KeyPool(keys);
  const sent: Alert[][] = [];
  const watcher = new AlertWatcher({
    pool,
    clock,
    log: silentLogger,
    debounceMs: 0,
    minIntervalMs: 0,
    send: (alerts) => sent.push([...alerts]),
  });
  watcher.attempt(
    attempt({ keyId: keys[0].id, project: "p1", status: 403, result: "key_rejected" }),
  );
  pool.addDisablement({
    scope: "project",
    id: "p1",
    reason: "SERVICE_DISABLED",
    status: 403,
    since: clock.now(),
    recheckAt: clock.now() + 86_400_000,
  });
  await clock.advance(0);
  const [alert] = sent[0];
  assert.equal(alert.kind, "key_disabled");
  if (alert.kind !== "key_disabled") return;
  assert.equal(alert.scope, "project");
  assert.deepEqual(alert.keyIds, keys.map((k) => k.id));
  assert.equal(alert.recheckAt, clock.now() + 86_400_000);
  watcher.close();
});

Deno.test("AlertWatcher: a spending cap (project cooldown) is not reported as a disabled key", async () => {
  const { clock, keys, watcher, sent } = await setup({ debounceMs: 0 });
  watcher.attempt(
    attempt({
      keyId: keys[0].id,
      project: keys[0].project,
      status: 429,
      result: "project_exhausted",
    }),
  );
  await clock.advance(MINUTE);
  assert.equal(sent.length, 0);
  watcher.close();
});

Deno.test("AlertWatcher: close() stops its timer and drops what is pending", async () => {
  const { clock, watcher, sent, coolAll } = await setup();
  coolAll(clock.now() + MINUTE);
  watcher.request(exhausted());
  await settle();
  assert.ok(clock.pending > 0);
  watcher.close();
  await settle();
  assert.equal(clock.pending, 0);
  await clock.advance(10 * MINUTE);
  assert.equal(sent.length, 0);
});

Deno.test("mergeAlerts() keeps the latest state of each model and counts its episodes", () => {
  const at = Date.UTC(2026, 0, 1);
  const ex = (t: number): Alert => ({
    kind: "model_exhausted",
    at: t,
    model: "m",
    reason: "ALL_KEYS_COOLING",
    keys: 2,
    recoversAt: t + 1000,
    episodes: 1,
  });
  const rec = (t: number, downSince: number): Alert => ({
    kind: "model_recovered",
    at: t,
    model: "m",
    downSince,
    episodes: 0,
  });
  const merged = mergeAlerts([ex(at), rec(at + 1, at), ex(at + 2), rec(at + 3, at + 2)]);
  assert.deepEqual(merged, [{ ...rec(at + 3, at), episodes: 2 }]);
  const stillDown = mergeAlerts([ex(at), rec(at + 1, at), ex(at + 2)]);
  assert.deepEqual(stillDown, [{ ...ex(at + 2), episodes: 2 }]);
});
