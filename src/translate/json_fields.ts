/**
 * Reads a Gemini request body the way Google's REST API does: proto3 JSON accepts both the
 * lowerCamelCase field names and the original snake_case ones (`inlineData` / `inline_data`),
 * https://protobuf.dev/programming-guides/json/ ("Parsers accept both the lowerCamelCase name
 * ... and the original proto field name"). Clients that build bodies by hand send either.
 *
 * Only the names of request fields are normalised, never user data inside them (function
 * arguments, schemas, responses).
 */

/** A request a fallback provider cannot answer faithfully, with a sentence for the client. */
export class Untranslatable extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = "Untranslatable";
  }
}

/** `inline_data` -> `inlineData`. */
export function camelCase(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/**
 * The fields of a JSON object by camelCase name, or an Untranslatable naming `where` when the
 * value is not an object.
 */
export function fieldsOf(value: unknown, where: string): Map<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new Untranslatable(`The request is malformed: ${where} is not a JSON object.`);
  }
  const fields = new Map<string, unknown>();
  for (const [name, field] of Object.entries(value)) {
    if (field !== undefined) fields.set(camelCase(name), field);
  }
  return fields;
}

/** The array at `where`, or an Untranslatable when it is something else. */
export function arrayOf(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) {
    throw new Untranslatable(`The request is malformed: ${where} is not a JSON array.`);
  }
  return value;
}

/** Refuses the first field not in `known`, naming it. */
export function onlyKnown(fields: Map<string, unknown>, known: ReadonlySet<string>, where: string) {
  for (const name of fields.keys()) {
    if (!known.has(name)) {
      throw new Untranslatable(
        `The request field ${where}.${name} is not one the translation to another provider ` +
          `knows how to carry.`,
      );
    }
  }
}
