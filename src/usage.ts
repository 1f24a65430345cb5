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
  if (tail.byteLength === 0) return undefined;
  const text = decoder.decode(tail);
  // Only the last usage object counts (usage is cumulative in streams): start there.
  const from = Math.max(text.lastIndexOf('"usageMetadata"'), text.lastIndexOf('"usage"'));
  if (from === -1) return undefined;
  const found: Record<string, number> = {};
  TOKEN_FIELDS.lastIndex = from;
  for (let match; (match = TOKEN_FIELDS.exec(text)) !== null;) found[match[1]] = Number(match[2]);
  const prompt = found.promptTokenCount ?? found.prompt_tokens;
  const total = found.totalTokenCount;
  const output = total !== undefined && prompt !== undefined
    ? total - prompt
    : found.candidatesTokenCount ?? found.completion_tokens;
  if (prompt === undefined && output === undefined) return undefined;
  return { promptTokens: prompt ?? 0, outputTokens: Math.max(0, output ?? 0) };
}

const TOKEN_FIELDS =
  /"(promptTokenCount|totalTokenCount|candidatesTokenCount|prompt_tokens|completion_tokens)"\s*:\s*(\d+)/g;

export interface UsageRecorderOptions {
  readonly now: () => number;
  readonly log: Logger;
  /** Minimum time between store writes; 0 writes after every request. */
  readonly flushIntervalMs: number;
}

export class UsageRecorder {
  readonly #store: StateStore;
  readonly #options: UsageRecorderOptions;
  #pending = new Map<string, UsageRow>();
  #lastFlush = 0;
  #flushing: Promise<void> = Promise.resolve();

  constructor(store: StateStore, options: UsageRecorderOptions) {
    this.#store = store;
    this.#options = options;
  }

  /** Adds to the counters of `keyId` and `model` for today (Pacific). */
  count(keyId: string, model: string, delta: Partial<UsageCounts>): void {
    const day = pacificDay(this.#options.now());
    const id = `${day}\u0000${keyId}\u0000${model}`;
    let row = this.#pending.get(id);
    if (!row) {
      row = { day, keyId, model, ...emptyCounts() };
      this.#pending.set(id, row);
    }
    for (const field of USAGE_FIELDS) row[field] += delta[field] ?? 0;
  }

  /** Writes pending counts if the flush interval has passed; never throws. */
  maybeFlush(): void {
    if (this.#options.now() - this.#lastFlush >= this.#options.flushIntervalMs) {
      void this.flush();
    }
  }

  /** Writes all pending counts now (also on shutdown). */
  flush(): Promise<void> {
    if (this.#pending.size === 0) return this.#flushing;
    const rows = [...this.#pending.values()];
    this.#pending = new Map();
    this.#lastFlush = this.#options.now();
    this.#flushing = this.#flushing.then(() => this.#store.addUsage(rows)).catch((error) => {
      this.#options.log.warn("usage counters could not be written", {
        error: describeError(error),
        rows: rows.length,
      });
    });
    return this.#flushing;
  }

  /** Today's rows as stored plus what is not yet written. */
  async usage(day: string, keyId?: string): Promise<UsageRow[]> {
    const stored = await this.#store.usage(day, keyId);
    const merged = new Map(stored.map((row) => [`${row.keyId}\u0000${row.model}`, { ...row }]));
    for (const row of this.#pending.values()) {
      if (row.day !== day || (keyId !== undefined && row.keyId !== keyId)) continue;
      const id = `${row.keyId}\u0000${row.model}`;
      const total = merged.get(id) ?? { ...row, ...emptyCounts() };
      for (const field of USAGE_FIELDS) total[field] += row[field];
      merged.set(id, total);
    }
    return [...merged.values()];
  }
}
