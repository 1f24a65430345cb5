/**
 * The Prometheus text exposition format, hand-written (Deno has no Prometheus exporter and the
 * rotator takes no runtime dependency): counters, gauges and histograms whose update is O(1) per
 * observation, rendered on demand.
 *
 * Format: https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
 * Naming: https://prometheus.io/docs/practices/naming/ (base units, `_total` counters,
 * `_seconds` histograms with `_bucket{le}`, `_sum` and `_count`).
 */

/** The Content-Type of the text format, version 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export type Labels = Readonly<Record<string, string>>;

/** Label values escape backslash, double quote and line feed; nothing else. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

/** HELP text escapes backslash and line feed. */
function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === "\n" ? "\\n" : "\\\\"));
}

/** `{a="1",b="2"}`, or "" without labels. Label names are ours, so they need no checking. */
export function formatLabels(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

/** Numbers as Prometheus writes them: `+Inf`, `-Inf`, `NaN`, else the shortest decimal. */
export function formatValue(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  if (Number.isNaN(value)) return "NaN";
  return String(value);
}

/** Collects the lines of one exposition. */
export class Exposition {
  readonly #lines: string[] = [];

  /** Starts a metric family: HELP and TYPE lines. */
  family(name: string, type: "counter" | "gauge" | "histogram", help: string): this {
    this.#lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    return this;
  }

  sample(name: string, labels: Labels, value: number): this {
    this.#lines.push(`${name}${formatLabels(labels)} ${formatValue(value)}`);
    return this;
  }

  toString(): string {
    return this.#lines.join("\n") + "\n";
  }
}

/** A counter family keyed by its label values (in a fixed label order). */
export class CounterVec {
  readonly #series = new Map<string, { labels: Labels; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}

  /** Adds `by` (default 1) to the series with these label values, in labelNames order. */
  inc(values: readonly string[], by = 1): void {
    const id = values.join("\u0000");
    let series = this.#series.get(id);
    if (!series) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((name, i) => labels[name] = values[i]);
      series = { labels, value: 0 };
      this.#series.set(id, series);
    }
    series.value += by;
  }

  /** The value of one series (0 when never incremented). */
  get(values: readonly string[]): number {
    return this.#series.get(values.join("\u0000"))?.value ?? 0;
  }

  /** Drops series whose labels fail `keep` (e.g. keys removed from the pool). */
  prune(keep: (labels: Labels) => boolean): void {
    for (const [id, series] of this.#series) if (!keep(series.labels)) this.#series.delete(id);
  }

  render(out: Exposition): void {
    out.family(this.name, "counter", this.help);
    for (const series of this.#series.values()) out.sample(this.name, series.labels, series.value);
  }
}

/**
 * A histogram without labels: cumulative buckets as the format wants them are computed when
 * rendered, so an observation touches one bucket only.
 */
export class Histogram {
  readonly #bounds: readonly number[];
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  constructor(readonly name: string, readonly help: string, bounds: readonly number[]) {
    this.#bounds = [...bounds].sort((a, b) => a - b);
    this.#counts = new Array(this.#bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    let i = 0;
    // A dozen bounds at most: a linear scan is constant time and faster than a search here.
    while (i < this.#bounds.length && value > this.#bounds[i]) i++;
    this.#counts[i]++;
    this.#sum += value;
    this.#count++;
  }

  get count(): number {
    return this.#count;
  }

  render(out: Exposition): void {
    out.family(this.name, "histogram", this.help);
    let cumulative = 0;
    this.#bounds.forEach((bound, i) => {
      cumulative += this.#counts[i];
      out.sample(`${this.name}_bucket`, { le: formatValue(bound) }, cumulative);
    });
    out.sample(`${this.name}_bucket`, { le: "+Inf" }, this.#count);
    out.sample(`${this.name}_sum`, {}, this.#sum);
    out.sample(`${this.name}_count`, {}, this.#count);
  }
}
