/**
 * Parses a list of API keys as operators write it: comma- or newline-separated, or a JSON array
 * of strings or `{key, project, label}` objects. Errors name the entry by position and never
 * contain any part of a key.
 */

/** One key as configured, before it is fingerprinted. */
export interface KeySpec {
  readonly value: string;
  /** The Google Cloud project the key belongs to; keys of one project share one quota. */
  readonly project?: string;
  readonly label?: string;
}

export interface KeyListResult {
  readonly keys: KeySpec[];
  /** How many blank or duplicate entries were dropped. */
  readonly dropped: number;
}

/** A project or label name: short, printable, no separators that could be confused with a key. */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._ -]{0,63}$/;
const MAX_KEY_LENGTH = 512;
/** The start of a Gemini key (AIza…, AQ.…): never part of a project or label name. */
const KEY_SHAPE = /AIza|\b[AI]Q\./;

/** Thrown with a message that names the variable and the entry, never the key. */
export class KeyListError extends Error {}

/**
 * Parses `text` (the value of `variable`) into key specs.
 *
 * Plain entries are `KEY` or `project:KEY`; a key never contains `:`, so the prefix is unambiguous.
 */
export function parseKeyList(variable: string, text: string | undefined): KeyListResult {
  const source = (text ?? "").trim();
  if (source === "") return { keys: [], dropped: 0 };
  const raw = source.startsWith("[") ? parseJsonEntries(variable, source) : parsePlainEntries(
    variable,
    source,
  );
  const seen = new Set<string>();
  const keys: KeySpec[] = [];
  let dropped = 0;
  for (const spec of raw) {
    if (spec === undefined || seen.has(spec.value)) {
      dropped++;
      continue;
    }
    seen.add(spec.value);
    keys.push(spec);
  }
  // Project and label names are shown (admin API, logs); a key in one would be shown with them.
  raw.forEach((spec, index) => {
    for (const name of ["project", "label"] as const) {
      if (spec?.[name]?.split(/\s+/).some((word) => seen.has(word))) {
        throw new KeyListError(
          `${variable} entry ${index + 1} has a ${name} name that is one of the keys: ` +
            `write project:KEY (project first), or {"key","project","label"}`,
        );
      }
    }
  });
  return { keys, dropped };
}

function parsePlainEntries(variable: string, source: string): (KeySpec | undefined)[] {
  return source.split(/[,\n\r]+/).map((entry, index) => {
    const trimmed = entry.trim();
    if (trimmed === "") return undefined;
    const colon = trimmed.indexOf(":");
    if (colon === -1) return checkedSpec(variable, index, { value: trimmed });
    return checkedSpec(variable, index, {
      project: trimmed.slice(0, colon).trim(),
      value: trimmed.slice(colon + 1).trim(),
    });
  });
}

function parseJsonEntries(variable: string, source: string): (KeySpec | undefined)[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(source);
  } catch {
    // The parser's own message quotes the input, which would print keys: say only what is wrong.
    throw new KeyListError(
      `${variable} starts with "[" but is not valid JSON: write a JSON array of strings or ` +
        `{"key","project","label"} objects, or a comma-separated list`,
    );
  }
  if (!Array.isArray(parsed)) {
    throw new KeyListError(`${variable} must be a JSON array`);
  }
  return parsed.map((entry: unknown, index) => {
    if (typeof entry === "string") {
      return entry.trim() === ""
        ? undefined
        : checkedSpec(variable, index, { value: entry.trim() });
    }
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
      throw new KeyListError(
        `${variable} entry ${index + 1} must be a string or an object with a "key" field`,
      );
    }
    const record = entry as Record<string, unknown>;
    for (const field of Object.keys(record)) {
      if (!["key", "project", "label"].includes(field)) {
        // Never echo the field: a key written as a field name (`{"AIza…": "proj"}`) would
        // land in the start-up error, and so in logs.
        throw new KeyListError(
          `${variable} entry ${index + 1} has a field other than "key", "project" and "label"`,
        );
      }
    }
    const { key, project, label } = record;
    if (typeof key !== "string" || key.trim() === "") {
      throw new KeyListError(`${variable} entry ${index + 1} needs a non-empty "key" string`);
    }
    for (const [name, value] of [["project", project], ["label", label]] as const) {
      if (value !== undefined && typeof value !== "string") {
        throw new KeyListError(`${variable} entry ${index + 1}: "${name}" must be a string`);
      }
    }
    return checkedSpec(variable, index, {
      value: key.trim(),
      project: (project as string | undefined)?.trim(),
      label: (label as string | undefined)?.trim(),
    });
  });
}

function checkedSpec(variable: string, index: number, spec: KeySpec): KeySpec {
  return checkKeySpec(`${variable} entry ${index + 1}`, spec);
}

/**
 * Validates one key as typed (also for keys added through the admin API), naming it by `where`
 * in errors; key shapes are not checked (AIza… and AQ.… keys both exist).
 */
export function checkKeySpec(where: string, spec: KeySpec): KeySpec {
  if (spec.value === "") throw new KeyListError(`${where} has a project but no key`);
  if (spec.value.length > MAX_KEY_LENGTH) {
    throw new KeyListError(`${where} is longer than ${MAX_KEY_LENGTH} characters`);
  }
  if (/[\s"'<>\\]/.test(spec.value) || /[^\x21-\x7e]/.test(spec.value)) {
    throw new KeyListError(
      `${where} contains spaces, quotes or non-ASCII characters: a key is one printable word`,
    );
  }
  for (const name of ["project", "label"] as const) {
    const value = spec[name];
    if (value !== undefined && value !== "" && !NAME_PATTERN.test(value)) {
      throw new KeyListError(
        `${where} has an invalid ${name} name: use up to 64 letters, digits, ".", "_", "-" or spaces`,
      );
    }
    if (value !== undefined && KEY_SHAPE.test(value)) {
      throw new KeyListError(
        `${where} has a ${name} name shaped like an API key: write project:KEY (project ` +
          `first), or {"key","project","label"}`,
      );
    }
  }
  return {
    value: spec.value,
    ...(spec.project ? { project: spec.project } : {}),
    ...(spec.label ? { label: spec.label } : {}),
  };
}
