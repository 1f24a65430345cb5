import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "./config.ts";

const BASE = { API_KEYS: "AIzaSyCONFIG-xxxxxxxxxxxxxxxxxxxxxxxxxxxxx", HOST: "127.0.0.1" };

Deno.test("loadConfig() takes METRICS_TOKEN and ADMIN_TOKEN as metrics tokens", () => {
  assert.deepEqual(loadConfig(BASE).metricsTokens, []);
  const config = loadConfig({
    ...BASE,
    METRICS_TOKEN: "metrics-token-123",
    ADMIN_TOKEN: "admin-token-1234",
  });
  assert.deepEqual(config.metricsTokens, ["metrics-token-123", "admin-token-1234"]);
  assert.throws(
    () => loadConfig({ ...BASE, METRICS_TOKEN: "short" }),
    (e: Error) => e instanceof ConfigError && /METRICS_TOKEN is shorter than 8/.test(e.message),
  );
});

Deno.test("loadConfig() reads the alert webhook without ever quoting it", () => {
  assert.equal(loadConfig(BASE).alertWebhookUrl, undefined);
  const slack = loadConfig({
    ...BASE,
    ALERT_WEBHOOK_URL: "https://hooks.slack.com/services/T1/B2/secret",
  });
  assert.equal(slack.alertFormat, "slack");
  assert.equal(slack.alertDebounceMs, 10_000);
  assert.equal(slack.alertMinIntervalMs, 300_000);
  assert.equal(
    loadConfig({ ...BASE, ALERT_WEBHOOK_URL: "https://discord.com/api/webhooks/1/secret" })
      .alertFormat,
    "discord",
  );
  assert.equal(
    loadConfig({
      ...BASE,
      ALERT_WEBHOOK_URL: "https://hooks.slack.com/services/T1/B2/secret",
      ALERT_FORMAT: "JSON",
    }).alertFormat,
    "json",
  );
  for (const bad of ["not a url secret-part", "ftp://example.com/secret-part"]) {
    assert.throws(
      () => loadConfig({ ...BASE, ALERT_WEBHOOK_URL: bad }),
      (e: Error) =>
        e instanceof ConfigError && /ALERT_WEBHOOK_URL/.test(e.message) &&
        !e.message.includes("secret-part"),
    );
  }
  assert.throws(
    () => loadConfig({ ...BASE, ALERT_WEBHOOK_URL: "https://x.example/h", ALERT_FORMAT: "teams" }),
    /ALERT_FORMAT is "teams": set it to one of slack, discord, json/,
  );
});
