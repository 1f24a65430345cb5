/**
 * MODEL_FALLBACKS: which model may answer when every key is spent for the one requested, e.g.
 * `gemini-2.5-pro=gemini-2.5-flash;gemini-2.5-flash=gemini-2.5-flash-lite` (chains are followed;
 * a loop is refused at start-up). A client refuses substitution with `x-rotator-fallback: none`.
 */

import { ConfigError } from "./config.ts";

export function parseModelFallbacks(text: string | undefined): ReadonlyMap<string, string> {
  const map = new Map<string, string>();
  for (const raw of (text ?? "").split(/[;,\n]/)) {
    const entry = raw.trim();
    if (entry === "") continue;
    const match = /^([A-Za-z0-9._\/-]+)\s*=\s*([A-Za-z0-9._\/-]+)$/.exec(entry);
    if (!match) {
      throw new ConfigError(
        `MODEL_FALLBACKS entry "${entry.slice(0, 60)}" must look like model=substitute`,
      );
    }
    const [, from, to] = match;
    if (map.has(from)) {
      throw new ConfigError(`MODEL_FALLBACKS names a substitute for ${from} twice`);
    }
    map.set(from, to);
  }
  for (const start of map.keys()) {
    const seen = [start];
    for (let next = map.get(start); next !== undefined; next = map.get(next)) {
      if (seen.includes(next)) {
        throw new ConfigError(
          `MODEL_FALLBACKS has a loop: ${[...seen, next].join(" -> ")}; a model cannot stand in ` +
            `for itself`,
        );
      }
      seen.push(next);
    }
  }
  return map;
}

/** The substitutes for `model`, nearest first. */
export function fallbackChain(fallbacks: ReadonlyMap<string, string>, model: string): string[] {
  const chain: string[] = [];
  for (let next = fallbacks.get(model); next !== undefined; next = fallbacks.get(next)) {
    chain.push(next);
  }
  return chain;
}
