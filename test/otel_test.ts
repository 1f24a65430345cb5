/**
 * Deno's built-in OpenTelemetry export (OTEL_DENO=true), as docs/observability.md describes it:
 * the rotator started as the start task starts it exports a span for the request it served and
 * one for its call to Gemini, and metrics at shutdown, to an OTLP receiver on loopback, with no
 * flag; and nothing it exports carries a pool key or the client's access token.
 */

import assert from "node:assert/strict";
import { testKey, TOKEN } from "./harness.ts";
import { startMockUpstream } from "./mock_upstream.ts";
import { childEnv, spawnStartTask } from "./start_task.ts";
import { type ReceivedMessage, startWebhookReceiver } from "./webhook_receiver.ts";

const A = testKey("alpha");
const GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent";

interface Span {
  readonly name: string;
  /** OTLP span kind: 2 server, 3 client. */
  readonly kind: number;
  readonly attributes: { key: string; value: { stringValue?: string } }[];
}

function spansIn(message: ReceivedMessage): Span[] {
  const resources = (message.json.resourceSpans ?? []) as { scopeSpans: { spans: Span[] }[] }[];
  return resources.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans));
}

function attribute(span: Span, key: string): string | undefined {
  return span.attributes.find((a) => a.key === key)?.value.stringValue;
}

Deno.test("OTEL_DENO=true exports a span per served request and per Gemini call, and metrics, with no key or token in them", async () => {
  const mock = startMockUpstream();
  const collector = startWebhookReceiver();
  const cwd = await Deno.makeTempDir();
  try {
    const child = await spawnStartTask({
      ...childEnv(mock.url, A, TOKEN),
      STATE: "memory",
      OTEL_DENO: "true",
      OTEL_SERVICE_NAME: "gemini-key-rotator",
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      // Batches leave after 100 ms instead of 5 s, so the test does not wait them out.
      OTEL_BSP_SCHEDULE_DELAY: "100",
    }, cwd);
    let stopped: Deno.CommandStatus;
    let server: Span | undefined;
    let client: Span | undefined;
    try {
      const response = await fetch(`${child.ready}${GENERATE}`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-goog-api-key": TOKEN },
        body: JSON.stringify({ contents: [{ parts: [{ text: "Hi" }] }] }),
      });
      assert.equal(response.status, 200);
      await response.body?.cancel();
      // Spans come in batches, maybe several: read each export as it arrives until both show.
      const bothSpans = async () => {
        for (let n = 1; !(server && client); n++) {
          const message = await collector.message(n);
          if (!message.path.endsWith("/v1/traces")) continue;
          for (const span of spansIn(message)) {
            const url = attribute(span, "url.full") ?? "";
            if (span.kind === 2 && url === `${child.ready}${GENERATE}`) server = span;
            if (span.kind === 3 && url === `${mock.url}${GENERATE}`) client = span;
          }
        }
      };
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        bothSpans(),
        new Promise((_, reject) => {
          timer = setTimeout(() => {
            const paths = collector.messages.map((m) => m.path);
            reject(new Error(`no server and client span within 15 s; exports: ${paths}`));
          }, 15_000);
        }),
      ]).finally(() => clearTimeout(timer));
    } finally {
      stopped = await child.stop("SIGTERM");
    }
    assert.equal(stopped.code, 0, child.output());
    assert.equal(attribute(server!, "http.response.status_code"), "200");
    assert.equal(attribute(client!, "http.response.status_code"), "200");
    assert.equal(attribute(client!, "url.query"), "", "the key went in a header, not the URL");
    assert.ok(
      collector.messages.some((m) => m.path.endsWith("/v1/metrics")),
      "metrics are flushed at shutdown",
    );
    for (const message of collector.messages) {
      assert.ok(!message.body.includes(A), `a pool key in ${message.path}`);
      assert.ok(!message.body.includes(TOKEN), `the access token in ${message.path}`);
    }
  } finally {
    await collector.close();
    await mock.close();
    await Deno.remove(cwd, { recursive: true });
  }
});
