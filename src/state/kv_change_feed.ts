/**
 * Tells when a Deno KV key (the store's version counter) moved: by polling it, which works
 * across processes on one SQLite file, and if asked by watching it, which reaches only the same
 * process locally (checked on deno 2.9.6) but every isolate on Deno Deploy. The first read
 * always reports a change, so a write between a subscriber's initial load and the start of the
 * feed is not lost.
 */

export class ChangeFeed {
  readonly #kv: Deno.Kv;
  readonly #key: Deno.KvKey;
  readonly #pollMs: number;
  readonly #onChange: () => void;
  #seen: string | null | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #polling: Promise<void> | undefined;
  #reader: ReadableStreamDefaultReader<Deno.KvEntryMaybe<unknown>[]> | undefined;
  #watching: Promise<void> | undefined;
  #stopped = false;

  constructor(
    kv: Deno.Kv,
    key: Deno.KvKey,
    options: { pollMs: number; watch: boolean; onChange: () => void },
  ) {
    this.#kv = kv;
    this.#key = key;
    this.#pollMs = options.pollMs;
    this.#onChange = options.onChange;
    if (options.pollMs > 0) this.#schedule(0);
    if (options.watch) this.#watching = this.#watch();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#reader?.cancel().catch(() => {});
    await this.#polling;
    await this.#watching;
  }

  #schedule(ms: number): void {
    this.#timer = setTimeout(() => {
      this.#polling = this.#poll().finally(() => this.#polling = undefined);
    }, ms);
  }

  async #poll(): Promise<void> {
    try {
      const { versionstamp } = await this.#kv.get(this.#key);
      if (this.#stopped) return;
      if (versionstamp !== this.#seen) {
        this.#seen = versionstamp;
        this.#onChange();
      }
    } catch {
      // A locked or closing database: try again next round.
    }
    if (!this.#stopped) this.#schedule(this.#pollMs);
  }

  async #watch(): Promise<void> {
    try {
      this.#reader = this.#kv.watch([this.#key]).getReader();
      for (;;) {
        const { done } = await this.#reader.read();
        if (done || this.#stopped) return;
        this.#onChange();
      }
    } catch {
      // The handle was closed; polling (if on) carries on.
    }
  }
}
