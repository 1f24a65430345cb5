/**
 * Per-key, per-model, per-day usage counters: counted in memory on the hot path and written to
 * the store in batches, so a busy proxy makes a bounded number of store writes whatever its
 * request rate. Token counts come from the usageMetadata at the end of each answer.
 */

import { pacificDay } from "./cooldown.ts";
import type { Logger } from "./log.ts";
import {
  emptyCounts,
  type StateStore,
  USAGE_FIELDS,
  type UsageCounts,
  type UsageRow,
} from "./state/store.ts";
import { describeError } from "./log.ts";

export interface TokenUsage {
  readonly promptTokens: number;
  readonly outputTokens: number;
}

const decoder = new TextDecoder();

/**
 * Token counts from the last bytes of an answer: Gemini's cumulative usageMetadata (the last one
 * in a stream counts) or the OpenAI-compatible `usage` object.
 */
export function tokensFromTail(tail: Uint8Array): TokenUsage | undefined {
  // Only the last usage object counts (usage is cumulative in streams): decode from there.
  const from = lastIndexOf(tail, USAGE_NAME);
  if (from === -1) return undefined;
  const text = decoder.decode(tail.subarray(from));
  const found: Record<string, number> = {};
  TOKEN_FIELDS.lastIndex = 0;
  for (let match; (match = TOKEN_FIELDS.exec(text)) !== null;) found[match[1]] = Number(match[2]);
  const prompt = found.promptTokenCount ?? found.prompt_tokens;
  const total = found.totalTokenCount;
  const output = total !== undefined && prompt !== undefined
    ? total - prompt
    : found.candidatesTokenCount ?? found.completion_tokens;
  if (prompt === undefined && output === undefined) return undefined;
  return { promptTokens: prompt ?? 0, outputTokens: Math.max(0, output ?? 0) };
}

/** `"usage`: starts both Gemini's `"usageMetadata"` and OpenAI's `"usage"`. */
const USAGE_NAME = new TextEncoder().encode('"usage');

/** The last index of `needle` in `bytes`, or -1. */
function lastIndexOf(bytes: Uint8Array, needle: Uint8Array): number {
  const first = needle[0];
  for (let at = bytes.lastIndexOf(first, bytes.length - needle.length); at !== -1;) {
    let i = 1;
    while (i < needle.length && bytes[at + i] === needle[i]) i++;
    if (i === needle.length) return at;
    if (at === 0) break;
    at = bytes.lastIndexOf(first, at - 1);
  }
  return -1;
}

const TOKEN_FIELDS =
  /"(promptTokenCount|totalTokenCount|candidatesTokenCount|prompt_tokens|completion_tokens)"\s*:\s*(\d+)/g;

const DAY_MS = 86_400_000;

/** Usage rows are kept this many days: a month of history, and then some. */
export const USAGE_RETENTION_DAYS = 35;

export interface UsageRecorderOptions {
  readonly now: () => number;
  readonly log: Logger;
  /** Minimum time between store writes; 0 writes after every request. */
  readonly flushIntervalMs: number;
}

export class UsageRecorder {
  readonly #store: StateStore;
  readonly #options: UsageRecorderOptions;
  /** Unwritten counts by day, then key, then model: no string key to build per request. */
  #pending = new Map<string, Map<string, Map<string, UsageRow>>>();
  #rows = 0;
  #lastFlush = 0;
  #flushing: Promise<void> = Promise.resolve();
  /** The day whose flush last pruned old rows: once a day per instance. */
  #prunedOn = "";

  constructor(store: StateStore, options: UsageRecorderOptions) {
    this.#store = store;
    this.#options = options;
  }

  /** Adds to the counters of `keyId` and `model` for today (Pacific). */
  count(keyId: string, model: string, delta: Partial<UsageCounts>): void {
    const day = pacificDay(this.#options.now());
    let byKey = this.#pending.get(day);
    if (!byKey) this.#pending.set(day, byKey = new Map());
    let byModel = byKey.get(keyId);
    if (!byModel) byKey.set(keyId, byModel = new Map());
    let row = byModel.get(model);
    if (!row) {
      byModel.set(model, row = { day, keyId, model, ...emptyCounts() });
      this.#rows++;
    }
    for (const field of USAGE_FIELDS) row[field] += delta[field] ?? 0;
  }

  /** Every unwritten row. */
  *#pendingRows(): Generator<UsageRow> {
    for (const byKey of this.#pending.values()) {
      for (const byModel of byKey.values()) yield* byModel.values();
    }
  }

  /** Writes pending counts if the flush interval has passed; never throws. */
  maybeFlush(): void {
    if (this.#options.now() - this.#lastFlush >= this.#options.flushIntervalMs) {
      void this.flush();
    }
  }

  /** Writes all pending counts now (also on shutdown). */
  flush(): Promise<void> {
    if (this.#rows === 0) return this.#flushing;
    const rows = [...this.#pendingRows()];
    this.#pending = new Map();
    this.#rows = 0;
    const now = this.#options.now();
    this.#lastFlush = now;
    const today = pacificDay(now);
    const prune = today !== this.#prunedOn;
    this.#prunedOn = today;
    this.#flushing = this.#flushing.then(async () => {
      await this.#store.addUsage(rows);
      if (prune) await this.#pruneBefore(pacificDay(now - USAGE_RETENTION_DAYS * DAY_MS));
    }).catch((error) => {
      this.#options.log.warn("usage counters could not be written", {
        error: describeError(error),
        rows: rows.length,
      });
    });
    return this.#flushing;
  }

  /** Deletes the rows of days before `day`; a failure is logged, and tried again tomorrow. */
  async #pruneBefore(day: string): Promise<void> {
    try {
      await this.#store.pruneUsage(day);
    } catch (error) {
      this.#options.log.warn("old usage counters could not be deleted", {
        error: describeError(error),
        before: day,
      });
    }
  }

  /** Today's rows as stored plus what is not yet written. */
  async usage(day: string, keyId?: string): Promise<UsageRow[]> {
    const stored = await this.#store.usage(day, keyId);
    const merged = new Map(stored.map((row) => [`${row.keyId}\u0000${row.model}`, { ...row }]));
    for (const row of this.#pendingRows()) {
      if (row.day !== day || (keyId !== undefined && row.keyId !== keyId)) continue;
      const id = `${row.keyId}\u0000${row.model}`;
      const total = merged.get(id) ?? { ...row, ...emptyCounts() };
      for (const field of USAGE_FIELDS) total[field] += row[field];
      merged.set(id, total);
    }
    return [...merged.values()];
  }
}
