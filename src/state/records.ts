/**
 * The shared facts about keys that every instance must agree on: a (project, model) bucket is
 * cooling until a time, or a key or project is disabled. Plain data, stored as it is in KV.
 */

/** Model scope meaning "every model" (a project-wide cooldown such as a spending cap). */
export const ALL_MODELS = "*";

/** Why a bucket is cooling, which decides how long and what the client is told. */
export type CooldownWindow =
  | "minute"
  | "day"
  | "unknown"
  | "no_allowance"
  | "project"
  /** Not stored: the bucket used its known limit for the window (pacing, quota.ts). */
  | "paced";

export interface CooldownRecord {
  /** Quota owner: a configured project name or `key:<fingerprint>`. */
  readonly project: string;
  /** The model, "" for requests without one, or ALL_MODELS. */
  readonly model: string;
  /** Epoch milliseconds when the bucket may be used again. */
  readonly until: number;
  readonly window: CooldownWindow;
  /** Short machine reason, e.g. a quota id or `SPEND_CAP`. */
  readonly reason: string;
  /** When it was learned, and by which key (fingerprint). */
  readonly setAt: number;
  readonly keyId?: string;
}

export type DisableScope = "key" | "project";

export interface DisablementRecord {
  readonly scope: DisableScope;
  /** Key fingerprint or project name. */
  readonly id: string;
  /** Machine reason, e.g. `API_KEY_INVALID`, `LEAKED`, `SERVICE_DISABLED`, `MANUAL`. */
  readonly reason: string;
  /** The upstream status that caused it (0 for an operator's action). */
  readonly status: number;
  readonly since: number;
  /** When to try the key again; null means only an operator can bring it back. */
  readonly recheckAt: number | null;
}

/** Keeps the later of two cooldowns of one bucket, so racing writers never shorten one. */
export function laterCooldown(
  a: CooldownRecord | undefined,
  b: CooldownRecord,
): CooldownRecord {
  return a === undefined || b.until > a.until ? b : a;
}

/**
 * A pool key added at run time, as stored: the value only ever sealed (state/key_vault.ts), next
 * to what may be shown. Keys from API_KEYS are never stored.
 */
export interface StoredKeyRecord {
  /** The key's fingerprint (keys.ts). */
  readonly id: string;
  /** The key value, AES-GCM sealed: nonce || ciphertext || tag, bound to keyRecordPath(id). */
  readonly sealed: Uint8Array;
  readonly project?: string;
  readonly label?: string;
  /** When an operator added it (epoch ms). */
  readonly addedAt: number;
}

/**
 * Where a stored key lives in Deno KV. The sealed value is bound to this path (it is the
 * additional authenticated data), so a record copied under another id does not open.
 */
export function keyRecordPath(id: string): readonly string[] {
  return ["rotator", "keys", id];
}
