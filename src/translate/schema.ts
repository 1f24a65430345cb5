/**
 * Turns a Gemini Schema (the OpenAPI 3.0 subset of `responseSchema` and of a function
 * declaration's `parameters`) into the JSON Schema that chat-completions providers expect.
 *
 * Gemini Schema: https://ai.google.dev/api/caching#Schema (upper-case `type`, `nullable`,
 * `propertyOrdering`, int64 limits that JSON clients may send as strings). The mapping follows
 * fan776783/Api-Conversion `_sanitize_schema_for_openai` (type names lower-cased) and
 * PublicAffairs/openai-gemini, which does the reverse. A schema already written as JSON Schema
 * (lower-case types) passes through unchanged, so the conversion is safe to apply twice.
 */

/** Fields Gemini sends as int64, which proto3 JSON writes as strings ("3"). */
const INT64_FIELDS = new Set([
  "minItems",
  "maxItems",
  "minLength",
  "maxLength",
  "minProperties",
  "maxProperties",
]);

type Json = Record<string, unknown>;

/** The JSON Schema for a Gemini Schema; anything not an object comes back as it is. */
export function toJsonSchema(schema: unknown): unknown {
  if (schema === null || typeof schema !== "object" || Array.isArray(schema)) return schema;
  const source = schema as Json;
  const out: Json = {};
  const nullable = source.nullable === true;
  for (const [field, value] of Object.entries(source)) {
    switch (field) {
      case "type": {
        if (typeof value !== "string") {
          out.type = value;
          break;
        }
        const type = value.toLowerCase();
        if (type === "type_unspecified") break;
        out.type = nullable && type !== "null" ? [type, "null"] : type;
        break;
      }
      case "nullable":
        // Carried by `type` above: ["string", "null"].
        break;
      case "propertyOrdering":
        // Applied to `properties` below; not a JSON Schema keyword.
        break;
      case "example":
        out.examples = [value];
        break;
      case "properties":
        out.properties = orderedProperties(value, source.propertyOrdering);
        break;
      case "items":
      case "additionalProperties":
      case "not":
        out[field] = toJsonSchema(value);
        break;
      case "anyOf":
      case "oneOf":
      case "allOf":
        out[field] = Array.isArray(value) ? value.map(toJsonSchema) : value;
        break;
      case "$defs":
      case "definitions":
        out[field] = mapValues(value);
        break;
      default:
        out[field] = INT64_FIELDS.has(field) && typeof value === "string" && /^\d+$/.test(value)
          ? Number(value)
          : value;
    }
  }
  return out;
}

/** Properties converted, in `propertyOrdering` order first when one is given. */
function orderedProperties(properties: unknown, ordering: unknown): unknown {
  if (properties === null || typeof properties !== "object" || Array.isArray(properties)) {
    return properties;
  }
  const source = properties as Json;
  const names = Array.isArray(ordering)
    ? [
      ...ordering.filter((n): n is string => typeof n === "string" && n in source),
      ...Object.keys(source).filter((n) => !ordering.includes(n)),
    ]
    : Object.keys(source);
  const out: Json = {};
  for (const name of names) out[name] = toJsonSchema(source[name]);
  return out;
}

function mapValues(value: unknown): unknown {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJsonSchema(v)]));
}
