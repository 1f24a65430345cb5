/**
 * Shared pacing counts on Deno KV. Each bucket dimension is one entry: for a window of a given
 * length, the amounts sent per 100 ms slot inside the window (at most 600 slots a minute, well
 * under KV's 64 KiB); for a per-day window, the total of the Pacific day. A send is reserved
 * with one atomic check-and-set over all its dimensions, so instances never over-send together;
 * a conflicting writer makes the loser re-read and try again.
 */

import { nextPacificMidnight, pacificDay } from "../cooldown.ts";
import { ruleKindOf } from "../quota.ts";
import type { QuotaCounter, QuotaReservation, ReserveResult, SharedRule } from "./quota_counter.ts";

const SLOT_MS = 100;
const MAX_TRIES = 12;

/** Sends grouped per 100 ms slot: the time of the slot's latest send, and the slot's total. */
type Slots = [latest: number, amount: number][];

export class KvQuotaCounter implements QuotaCounter {
  readonly shared = true;
  readonly #kv: Deno.Kv;

  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  async reserve(reservations: readonly QuotaReservation[], now: number): Promise<ReserveResult> {
    if (reservations.length === 0) return { ok: true };
    const keys = reservations.map((r): Deno.KvKey =>
      r.window === "day" ? ["quota", r.bucket, pacificDay(now)] : ["quota", r.bucket]
    );
    for (let attempt = 0; attempt < MAX_TRIES; attempt++) {
      try {
        const entries = await this.#kv.getMany(keys);
        const op = this.#kv.atomic();
        for (let i = 0; i < reservations.length; i++) {
          const r = reservations[i];
          const entry = entries[i];
          op.check(entry);
          if (r.window === "day") {
            const used = (entry.value as number | null) ?? 0;
            if (used + r.amount > r.limit && r.amount <= r.limit) {
              return { ok: false, until: nextPacificMidnight(now) };
            }
            op.set(keys[i], used + r.amount, { expireIn: 26 * 3_600_000 });
            continue;
          }
          // A slot counts until its latest send leaves the window (never early for the others).
          const start = now - r.window;
          const slots = ((entry.value as Slots | null) ?? []).filter(([latest]) => latest > start);
          const used = slots.reduce((sum, [, amount]) => sum + amount, 0);
          if (used + r.amount > r.limit && r.amount <= r.limit) {
            let excess = used + r.amount - r.limit;
            for (const [latest, amount] of slots) {
              excess -= amount;
              if (excess <= 0) return { ok: false, until: latest + r.window };
            }
            return { ok: false, until: now + r.window };
          }
          const last = slots.at(-1);
          if (last && Math.floor(last[0] / SLOT_MS) === Math.floor(now / SLOT_MS)) {
            last[0] = Math.max(last[0], now);
            last[1] += r.amount;
          } else {
            slots.push([now, r.amount]);
          }
          op.set(keys[i], slots, { expireIn: r.window + 60_000 });
        }
        const result = await op.commit();
        if (result.ok) return { ok: true };
      } catch (error) {
        // Other processes on the same file: "database is locked" is a retryable conflict.
        if (!(error instanceof TypeError) || !/locked/i.test(error.message)) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 4 * (attempt + 1)));
    }
    // Heavy contention: let the local ledger's answer stand rather than fail the request.
    return { ok: true };
  }

  async saveRule(shared: SharedRule): Promise<void> {
    const kind = ruleKindOf(shared.rule);
    await this.#kv.set(["quota-rule", shared.project, shared.model, kind], shared, {
      expireIn: 24 * 3_600_000,
    });
  }

  async loadRules(): Promise<SharedRule[]> {
    const rules: SharedRule[] = [];
    for await (const entry of this.#kv.list<SharedRule>({ prefix: ["quota-rule"] })) {
      rules.push(entry.value);
    }
    return rules;
  }
}
