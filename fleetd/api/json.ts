import { ApiError } from './errors.js';

/**
 * JSON in and out of the API.
 *
 * Out: fleet's generated schema types (`schema/v1-gen.go`) marshal with `omitempty` on every
 * field and declare fields alphabetically, so clients see keys in alphabetical order and no
 * empty strings, zero numbers, empty arrays or empty maps. An entity with nothing in it, such as
 * an empty page, is `{}`. Like Go's `json.Marshal`, `<`, `>`, `&`, U+2028 and U+2029 are escaped.
 *
 * In: request bodies are decoded the way Go's `encoding/json` matches struct fields (exact name
 * first, then case-insensitively), but stricter than fleet: a field the API does not know is
 * rejected with 400 naming it, and a value of the wrong type names its field.
 */

/** Serializes an entity the way fleet's API did: keys sorted, empty fields omitted. */
export function encodeEntity(entity: object): string {
  const json = JSON.stringify(canonicalObject(entity) ?? {});
  // Inside JSON.stringify's output these characters can only appear within strings.
  return json.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function canonicalObject(value: object): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {};
  const keys = Object.keys(value).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const key of keys) {
    const v = canonicalField((value as Record<string, unknown>)[key]);
    if (v !== undefined) out[key] = v;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

/** A field's value, or undefined when `omitempty` drops it. */
function canonicalField(value: unknown): unknown {
  if (value === undefined || value === null || value === '' || value === 0 || value === false)
    return undefined;
  if (Array.isArray(value)) {
    // Elements are never omitted: an empty element object is still `{}`.
    return value.length === 0 ? undefined : value.map((e: unknown) => canonicalElement(e));
  }
  if (typeof value === 'object') return canonicalObject(value);
  return value;
}

function canonicalElement(value: unknown): unknown {
  if (Array.isArray(value)) return value.map((e: unknown) => canonicalElement(e));
  if (typeof value === 'object' && value !== null) return canonicalObject(value) ?? {};
  return value;
}

/** The prefix of every body decoding error, as fleet words it. */
const DECODE_PREFIX = 'unable to decode body: ';

/** A 400 for a body that cannot be decoded: `unable to decode body: <why>`. */
export function decodeError(why: string): ApiError {
  return new ApiError(400, DECODE_PREFIX + why);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
/** A UTF-16 surrogate that is not half of a pair (`\ud800` in a JSON string). */
const LONE_SURROGATE = /\p{Surrogate}/u;

/** The offset of the first byte that does not start a valid UTF-8 sequence. */
function firstInvalidUtf8(body: Buffer): number {
  for (let i = 0; i < body.length;) {
    const b = body[i] ?? 0;
    const length =
      b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 0;
    if (length === 0 || i + length > body.length) return i;
    try {
      strictUtf8.decode(body.subarray(i, i + length));
    } catch {
      return i;
    }
    i += length;
  }
  return body.length;
}

/**
 * Parses a request body as JSON. The body must be valid UTF-8 (fleet stored invalid bytes as
 * U+FFFD, changing the unit silently), and its strings must not hold lone surrogates (`\ud800`,
 * which cannot be stored as UTF-8 either). An empty body fails with `EOF`, as Go's decoder
 * reports it; invalid JSON with the parser's message. All as 400 `unable to decode body: ...`.
 */
export function parseJsonBody(body: Buffer): unknown {
  let text: string;
  try {
    text = strictUtf8.decode(body);
  } catch {
    throw decodeError(`invalid UTF-8 at byte ${firstInvalidUtf8(body)}`);
  }
  if (text.trim() === '') throw decodeError('EOF');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text, (_key, value: unknown) => {
      if (typeof value === 'string' && LONE_SURROGATE.test(value)) {
        throw new Error(
          `string ${JSON.stringify(value)} holds a lone UTF-16 surrogate, which is not Unicode text`,
        );
      }
      return value;
    }) as unknown;
  } catch (err) {
    throw decodeError(err instanceof Error ? err.message : String(err));
  }
  return parsed;
}

/** The JSON type of a value, for messages: `object`, `array`, `string`, `number`, `boolean`, `null`. */
export function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/** Names a field for messages: `name`, `options[2].value`. */
export function fieldPath(where: string, key: string): string {
  return where === '' ? key : `${where}.${key}`;
}

/**
 * Reads a JSON object's fields, matching `known` names exactly or else case-insensitively (as Go
 * does; the last of several spellings wins). Fails with 400 when `value` is not an object or has a
 * field outside `known`. `where` locates the object in the body for messages (`''` = the body).
 */
export function readFields<K extends string>(
  value: unknown,
  where: string,
  known: readonly K[],
): Partial<Record<K, unknown>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const what = where === '' ? 'the body' : where;
    throw decodeError(`expected ${what} to be a JSON object, got ${jsonType(value)}`);
  }
  const out: Partial<Record<K, unknown>> = {};
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    const match = known.find((k) => k === key) ?? known.find((k) => k.toLowerCase() === key.toLowerCase());
    if (match === undefined) throw decodeError(`unknown field ${JSON.stringify(fieldPath(where, key))}`);
    out[match] = v;
  }
  return out;
}

/** A string field; undefined when absent or null (Go leaves the zero value). 400 for other types. */
export function optionalString(value: unknown, path: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  throw decodeError(`field ${JSON.stringify(path)} must be a string, got ${jsonType(value)}`);
}

/** An array field; undefined when absent or null. 400 for other types. */
export function optionalArray(value: unknown, path: string): readonly unknown[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value as readonly unknown[];
  throw decodeError(`field ${JSON.stringify(path)} must be an array, got ${jsonType(value)}`);
}
