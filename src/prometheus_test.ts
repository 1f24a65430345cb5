import assert from "node:assert/strict";
import { parsePrometheusText } from "../test/prom_text.ts";
import { CounterVec, escapeLabelValue, Exposition, formatValue, Histogram } from "./prometheus.ts";

Deno.test("escapeLabelValue() escapes backslash, quote and line feed only", () => {
  assert.equal(escapeLabelValue('a\\b"c\nd{e}'), 'a\\\\b\\"c\\nd{e}');
});

Deno.test("formatValue() writes infinities and NaN the Prometheus way", () => {
  assert.equal(formatValue(Infinity), "+Inf");
  assert.equal(formatValue(-Infinity), "-Inf");
  assert.equal(formatValue(NaN), "NaN");
  assert.equal(formatValue(0.25), "0.25");
});

Deno.test("CounterVec renders one series per label set and parses back", () => {
  const counter = new CounterVec("x_total", "Things\ncounted \\ here.", ["model"]);
  counter.inc(['we"ird\nmodel']);
  counter.inc(['we"ird\nmodel'], 2);
  counter.inc(["plain"]);
  const out = new Exposition();
  counter.render(out);
  const parsed = parsePrometheusText(out.toString());
  assert.equal(parsed.value("x_total", { model: 'we"ird\nmodel' }), 3);
  assert.equal(parsed.value("x_total", { model: "plain" }), 1);
});

Deno.test("Histogram renders cumulative buckets, +Inf, _sum and _count", () => {
  const histogram = new Histogram("h_seconds", "Latency.", [1, 0.1, 0.5]);
  for (const v of [0.05, 0.1, 0.3, 0.7, 5]) histogram.observe(v);
  const out = new Exposition();
  histogram.render(out);
  const parsed = parsePrometheusText(out.toString());
  assert.equal(parsed.value("h_seconds_bucket", { le: "0.1" }), 2);
  assert.equal(parsed.value("h_seconds_bucket", { le: "0.5" }), 3);
  assert.equal(parsed.value("h_seconds_bucket", { le: "1" }), 4);
  assert.equal(parsed.value("h_seconds_bucket", { le: "+Inf" }), 5);
  assert.equal(parsed.value("h_seconds_count"), 5);
  assert.ok(Math.abs(parsed.value("h_seconds_sum")! - 6.15) < 1e-9);
});
