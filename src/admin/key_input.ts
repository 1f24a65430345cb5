/**
 * What an operator may send to add keys, and other admin inputs that need more than a type
 * check: validated in full before anything is written, with messages that name the entry and
 * field at fault and never quote a key.
 */

import { checkKeySpec, KeyListError, type KeySpec } from "../key_list.ts";
import { MAX_KEYS_PER_ADD } from "../state/store.ts";
import { expectObject } from "./json.ts";

/** The keys of a POST body, validated in full, or a message naming the first problem. */
export function parseKeysBody(value: unknown): KeySpec[] | string {
  if (value === undefined) {
    return 'The request body is empty: send {"keys": [{"key": "...", "label": "..."}]}.';
  }
  let entries: unknown[];
  let where: (i: number) => string;
  if (value !== null && typeof value === "object" && !Array.isArray(value) && "key" in value) {
    entries = [value];
    where = () => "the body";
  } else {
    const body = expectObject(value, ["keys"], false);
    if (typeof body === "string") {
      return `${body} Send {"keys": [{"key": "...", "label": "...", "project": "..."}]}.`;
    }
    if (!Array.isArray(body.keys)) return '"keys" must be an array of {"key", "label", "project"}.';
    entries = body.keys;
    where = (i) => `keys[${i}]`;
  }
  if (entries.length === 0) return '"keys" is empty: send at least one key.';
  if (entries.length > MAX_KEYS_PER_ADD) {
    return `"keys" has ${entries.length} entries; add at most ${MAX_KEYS_PER_ADD} per request.`;
  }
  const specs: KeySpec[] = [];
  for (const [i, entry] of entries.entries()) {
    const raw = typeof entry === "string" ? { key: entry } : entry;
    const fields = expectObject(raw, ["key", "label", "project"], false);
    if (typeof fields === "string") {
      return `${where(i)}: ${
        raw !== null && typeof raw === "object" && !Array.isArray(raw)
          ? fields
          : 'must be an object with "key" and optional "label" and "project".'
      }`;
    }
    if (typeof fields.key !== "string" || fields.key.trim() === "") {
      return `${where(i)}: "key" must be a non-empty string.`;
    }
    for (const name of ["label", "project"] as const) {
      if (fields[name] !== undefined && typeof fields[name] !== "string") {
        return `${where(i)}: "${name}" must be a string.`;
      }
    }
    try {
      specs.push(checkKeySpec(where(i), {
        value: fields.key.trim(),
        ...(typeof fields.project === "string" ? { project: fields.project.trim() } : {}),
        ...(typeof fields.label === "string" ? { label: fields.label.trim() } : {}),
      }));
    } catch (error) {
      if (error instanceof KeyListError) return `${error.message}.`;
      throw error;
    }
  }
  return specs;
}

/** A real calendar date written `YYYY-MM-DD`. */
export function isDay(text: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return false;
  const date = new Date(`${text}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 10) === text;
}
