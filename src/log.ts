/**
 * Structured log lines (one JSON object per line) and the only place redaction happens: every
 * line passes through a Redactor that blanks pool keys, access tokens and anything shaped like a
 * Gemini key, so a secret cannot reach the log even by way of an upstream error message.
 */

import type { LogLevel } from "./config.ts";

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Legacy `AIza…` keys (39 characters) and `AQ.…` auth keys, wherever they appear in text. */
const KEY_SHAPES = /AIza[0-9A-Za-z_-]{30,}|\b[AI]Q\.[0-9A-Za-z_.-]{16,}/g;
/** Characters a key-like word is made of; other characters split words. */
const WORD_SPLIT = /[^A-Za-z0-9._-]+/;
const REDACTED = "[REDACTED]";

/** Blanks known secrets and key-shaped strings out of text. */
export class Redactor {
  #words = new Set<string>();
  #phrases: string[] = [];

  constructor(secrets: Iterable<string> = []) {
    this.setSecrets(secrets);
  }

  /** Replaces the known secrets (pool keys change at run time). */
  setSecrets(secrets: Iterable<string>): void {
    const words = new Set<string>();
    const phrases: string[] = [];
    for (const secret of secrets) {
      if (secret.length < 4) continue;
      if (WORD_SPLIT.test(secret)) phrases.push(secret);
      else words.add(secret);
    }
    this.#words = words;
    this.#phrases = phrases;
  }

  redact(text: string): string {
    let out = text.replace(KEY_SHAPES, REDACTED);
    for (const phrase of this.#phrases) out = out.replaceAll(phrase, REDACTED);
    if (this.#words.size === 0) return out;
    // Secrets are whole words of key characters: look each word up instead of scanning for
    // every secret, so the cost does not grow with the number of keys.
    let changed = false;
    const parts = out.split(/([^A-Za-z0-9._-]+)/);
    for (let i = 0; i < parts.length; i += 2) {
      if (this.#words.has(parts[i])) {
        parts[i] = REDACTED;
        changed = true;
      } else if (parts[i].length > 8) {
        // A secret glued to other key characters (e.g. `key.AIza…`): check the dotted pieces.
        for (const piece of parts[i].split(".")) {
          if (this.#words.has(piece)) {
            parts[i] = parts[i].replaceAll(piece, REDACTED);
            changed = true;
          }
        }
      }
    }
    return changed ? parts.join("") : out;
  }
}

export interface LoggerOptions {
  readonly level: LogLevel;
  readonly redactor: Redactor;
  /** Receives each finished line (without newline). */
  readonly write: (line: string) => void;
  readonly now?: () => number;
}

export function createLogger(options: LoggerOptions): Logger {
  const min = LEVELS[options.level];
  const now = options.now ?? Date.now;
  const emit = (level: LogLevel, msg: string, fields?: LogFields) => {
    if (LEVELS[level] < min) return;
    const line = JSON.stringify({ time: new Date(now()).toISOString(), level, msg, ...fields });
    options.write(options.redactor.redact(line));
  };
  return {
    debug: (msg, fields) => emit("debug", msg, fields),
    info: (msg, fields) => emit("info", msg, fields),
    warn: (msg, fields) => emit("warn", msg, fields),
    error: (msg, fields) => emit("error", msg, fields),
  };
}

/** A logger that drops everything (tests that do not look at logs). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/** A short, safe description of a thrown value for a log line. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`.slice(0, 500);
  return String(error).slice(0, 500);
}
