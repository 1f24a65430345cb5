/**
 * A strict little parser of the Prometheus text format (version 0.0.4) for tests: it throws on
 * any line Prometheus would reject or that breaks the naming rules we promise, and returns the
 * samples so tests can read values.
 * https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
 */

export interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

export interface Exposition {
  readonly types: Map<string, string>;
  readonly samples: Sample[];
  /** The value of the series `name` with exactly `labels`, or undefined. */
  value(name: string, labels?: Record<string, string>): number | undefined;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const VALUE = /^(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|[+-]Inf|NaN)$/;

export function parsePrometheusText(text: string): Exposition {
  if (!text.endsWith("\n")) throw new Error("exposition must end with a line feed");
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const samples: Sample[] = [];
  const seen = new Set<string>();
  const lines = text.slice(0, -1).split("\n");
  lines.forEach((line, index) => {
    const where = `line ${index + 1}: ${JSON.stringify(line)}`;
    if (line.startsWith("#")) {
      const match = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
      if (!match) throw new Error(`bad comment, ${where}`);
      const [, kind, name, rest] = match;
      if (!METRIC_NAME.test(name)) throw new Error(`bad metric name, ${where}`);
      if (kind === "TYPE") {
        if (!/^(counter|gauge|histogram|summary|untyped)$/.test(rest)) {
          throw new Error(`bad type, ${where}`);
        }
        if (types.has(name)) throw new Error(`second TYPE for ${name}, ${where}`);
        if (samples.some((s) => familyOf(s.name, types) === name)) {
          throw new Error(`TYPE after samples of ${name}, ${where}`);
        }
        if (rest === "counter" && !name.endsWith("_total")) {
          throw new Error(`counter without _total, ${where}`);
        }
        types.set(name, rest);
      } else {
        if (helps.has(name)) throw new Error(`second HELP for ${name}, ${where}`);
        if (!/^(?:[^\\]|\\[\\n])*$/.test(rest)) throw new Error(`bad escape in HELP, ${where}`);
        helps.add(name);
      }
      return;
    }
    if (line.trim() === "") throw new Error(`blank line, ${where}`);
    const sample = parseSample(line, where);
    const family = familyOf(sample.name, types);
    if (family === undefined) throw new Error(`sample before its TYPE, ${where}`);
    const id = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`;
    if (seen.has(id)) throw new Error(`duplicate series, ${where}`);
    seen.add(id);
    samples.push(sample);
  });
  checkHistograms(types, samples);
  return {
    types,
    samples,
    value(name, labels = {}) {
      const want = JSON.stringify(Object.entries(labels).sort());
      return samples.find((s) =>
        s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want
      )?.value;
    },
  };
}

function familyOf(name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, "");
  return types.get(base) === "histogram" ? base : undefined;
}

function parseSample(line: string, where: string): Sample {
  const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)( -?\d+)?$/.exec(line);
  if (!match) throw new Error(`bad sample, ${where}`);
  const [, name, rawLabels, rawValue] = match;
  if (!VALUE.test(rawValue)) throw new Error(`bad value, ${where}`);
  const value = rawValue.endsWith("Inf")
    ? (rawValue.startsWith("-") ? -Infinity : Infinity)
    : Number(rawValue);
  const labels: Record<string, string> = {};
  if (rawLabels) {
    let rest = rawLabels.slice(1, -1);
    while (rest.length > 0) {
      const m = /^([^=]+)="((?:[^"\\]|\\[\\"n])*)"(,|$)/.exec(rest);
      if (!m) throw new Error(`bad labels, ${where}`);
      if (!LABEL_NAME.test(m[1])) throw new Error(`bad label name ${m[1]}, ${where}`);
      if (m[1] in labels) throw new Error(`repeated label ${m[1]}, ${where}`);
      labels[m[1]] = m[2].replace(/\\([\\"n])/g, (_, c) => (c === "n" ? "\n" : c));
      rest = rest.slice(m[0].length);
    }
  }
  return { name, labels, value };
}

/** Buckets cumulative and ending in +Inf equal to _count, for every histogram series. */
function checkHistograms(types: Map<string, string>, samples: Sample[]): void {
  for (const [name, type] of types) {
    if (type !== "histogram") continue;
    if (!name.endsWith("_seconds")) throw new Error(`histogram ${name} is not in seconds`);
    const buckets = samples.filter((s) => s.name === `${name}_bucket`);
    const count = samples.find((s) => s.name === `${name}_count`);
    if (!count || !samples.some((s) => s.name === `${name}_sum`)) {
      throw new Error(`histogram ${name} lacks _sum or _count`);
    }
    let previous = -Infinity;
    let previousCount = 0;
    for (const bucket of buckets) {
      const le = bucket.labels.le === "+Inf" ? Infinity : Number(bucket.labels.le);
      if (!(le > previous)) throw new Error(`histogram ${name} buckets out of order`);
      if (bucket.value < previousCount) throw new Error(`histogram ${name} not cumulative`);
      previous = le;
      previousCount = bucket.value;
    }
    if (previous !== Infinity) throw new Error(`histogram ${name} has no +Inf bucket`);
    if (previousCount !== count.value) throw new Error(`histogram ${name}: +Inf != _count`);
  }
}
