/**
 * Seals pool keys for storage: AES-256-GCM authenticated encryption through WebCrypto, with a
 * key derived from KEY_ENCRYPTION_SECRET, a random 96-bit nonce per value, and the bytes laid
 * out `nonce || ciphertext || tag` as denoland/std `crypto/aes_gcm.ts` does. The record's KV key
 * is the additional authenticated data, so a sealed value opens only where it was stored.
 *
 * AES-GCM nonce and tag sizes: NIST SP 800-38D (96-bit IV recommended, 128-bit tag).
 */

const NONCE_BYTES = 12;
const TAG_BITS = 128;
/**
 * PBKDF2-HMAC-SHA256 at 600,000 iterations (OWASP Password Storage Cheat Sheet): the secret may
 * be a passphrase, so guessing it must be slow. It costs ~140 ms once, when the app starts.
 */
const PBKDF2_ITERATIONS = 600_000;
/**
 * A fixed, application-specific salt. A random per-database salt would sit next to the
 * ciphertext it protects; this one already rules out tables computed for other software.
 */
const SALT = new TextEncoder().encode("gemini-key-rotator/key-encryption/v1");

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A sealed value that does not open: wrong secret, wrong place, or damaged bytes. */
export class SealError extends Error {
  override name = "SealError";
}

export class KeyVault {
  readonly #key: CryptoKey;

  private constructor(key: CryptoKey) {
    this.#key = key;
  }

  /** Derives the encryption key from the operator's secret. */
  static async fromSecret(secret: string): Promise<KeyVault> {
    const material = await crypto.subtle.importKey(
      "raw",
      encoder.encode(secret),
      "PBKDF2",
      false,
      ["deriveKey"],
    );
    const key = await crypto.subtle.deriveKey(
      { name: "PBKDF2", hash: "SHA-256", salt: SALT, iterations: PBKDF2_ITERATIONS },
      material,
      { name: "AES-GCM", length: 256 },
      false,
      ["encrypt", "decrypt"],
    );
    return new KeyVault(key);
  }

  /** `nonce || ciphertext || tag` of `plaintext`, bound to `place` (the record's KV key). */
  async seal(plaintext: string, place: readonly string[]): Promise<Uint8Array> {
    const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
    const sealed = await crypto.subtle.encrypt(
      { name: "AES-GCM", iv: nonce, additionalData: placeBytes(place), tagLength: TAG_BITS },
      this.#key,
      encoder.encode(plaintext),
    );
    const out = new Uint8Array(NONCE_BYTES + sealed.byteLength);
    out.set(nonce);
    out.set(new Uint8Array(sealed), NONCE_BYTES);
    return out;
  }

  /** The plaintext of a value sealed for `place`; throws SealError if it does not open. */
  async open(sealed: Uint8Array, place: readonly string[]): Promise<string> {
    if (sealed.byteLength < NONCE_BYTES + TAG_BITS / 8) {
      throw new SealError("the sealed value is too short");
    }
    try {
      const plain = await crypto.subtle.decrypt(
        {
          name: "AES-GCM",
          iv: sealed.slice(0, NONCE_BYTES),
          additionalData: placeBytes(place),
          tagLength: TAG_BITS,
        },
        this.#key,
        sealed.slice(NONCE_BYTES),
      );
      return decoder.decode(plain);
    } catch {
      throw new SealError(
        "the sealed value does not open: KEY_ENCRYPTION_SECRET differs from the one it was " +
          "sealed with, or the record was altered",
      );
    }
  }
}

function placeBytes(place: readonly string[]): Uint8Array<ArrayBuffer> {
  return encoder.encode(JSON.stringify(place));
}
