import { FleetError } from '../lib/errors.js';
import { fail, ok, type UnitResult } from './problems.js';

/**
 * fleet's unit-name rules: which types exist, what a valid name looks like (`api.ValidateName`),
 * how a name splits into prefix, instance and type (`unit.NewUnitNameInfo`), and how fleetctl turns a
 * command-line argument into a unit name (`unitNameMangle`). Error messages are fleet's, word for word.
 */

/**
 * The unit types fleetctl and the agent recognize (`unit.RecognizedUnitType`): fleetctl appends
 * `.service` to any argument not ending in one of them, and the agent ignores other files in its
 * units directory.
 */
export const RECOGNIZED_UNIT_TYPES = [
  'service',
  'socket',
  'timer',
  'path',
  'device',
  'mount',
  'automount',
] as const;
export type RecognizedUnitType = (typeof RECOGNIZED_UNIT_TYPES)[number];

/**
 * The unit types the API accepts: the types systemd knows (`unit_type_from_string`). Wider than
 * the recognized types: the API takes `foo.target`, which fleetctl would have mangled into
 * `foo.target.service`. fleet's `api.ValidateName` also took `busname` and `snapshot`, which
 * systemd dropped (v230 and v228): a unit of such a type could never be loaded, so it is refused.
 */
export const VALID_UNIT_TYPES = [
  'automount',
  'device',
  'mount',
  'path',
  'scope',
  'service',
  'slice',
  'socket',
  'swap',
  'target',
  'timer',
] as const;
export type UnitType = (typeof VALID_UNIT_TYPES)[number];

/** The types a template or instance name (any name with `@` before the type) may have. */
export const TEMPLATE_UNIT_TYPES = ['path', 'service', 'socket', 'target', 'timer'] as const;
export type TemplateUnitType = (typeof TEMPLATE_UNIT_TYPES)[number];

/**
 * systemd's `UNIT_NAME_MAX`: a unit name must be shorter than this, in bytes
 * (`unit_name_is_valid`: `strlen(n) >= UNIT_NAME_MAX` is invalid), so at most 255 bytes.
 */
export const UNIT_NAME_MAX = 256;

/**
 * The agent writes a unit file through a temporary file beside it, `.<name>.<12 hex>.tmp`
 * (`unitFileTempName`): 18 bytes more than the name, and a file name has at most 255 bytes
 * (`NAME_MAX`).
 */
export const UNIT_FILE_TEMP_EXTRA_BYTES = 18;

/** The longest unit name fleet-ts accepts, in UTF-8 bytes: 255 less the temporary file's 18 (237). */
export const MAX_UNIT_NAME_BYTES = UNIT_NAME_MAX - 1 - UNIT_FILE_TEMP_EXTRA_BYTES;

/**
 * The name of the temporary file the agent writes a unit file through: `.<name>.<random>.tmp`,
 * where `random` is 12 hex digits. A valid unit name keeps it within a file name's 255 bytes.
 */
export function unitFileTempName(name: string, random: string): string {
  return `.${name}.${random}.tmp`;
}

/** The type fleetctl appends to arguments without a recognized type. */
export const DEFAULT_UNIT_TYPE: RecognizedUnitType = 'service';

// fleet's `validChars`: a literal set, not a regex range (`:-_` is three characters, not a span).
const VALID_NAME_CHARS = new Set('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:-_.\\@');
const VALID_TYPE_SET: ReadonlySet<string> = new Set(VALID_UNIT_TYPES);
const TEMPLATE_TYPE_SET: ReadonlySet<string> = new Set(TEMPLATE_UNIT_TYPES);
const RECOGNIZED_TYPE_SET: ReadonlySet<string> = new Set(RECOGNIZED_UNIT_TYPES);
const utf8 = new TextEncoder();

/**
 * The anatomy of a unit name, as fleet's `unit.NewUnitNameInfo` splits it. The type is everything
 * after the **last** `.`; the instance is everything after the **first** `@` before that.
 * `foo@bar@baz.service` has prefix `foo`, instance `bar@baz`, template `foo@.service`.
 */
export interface UnitNameInfo {
  /** The name as given, e.g. `foo@bar.service`. */
  readonly fullName: string;
  /** The name without its suffix, e.g. `foo@bar` (systemd's `%N`). */
  readonly name: string;
  /** The part before the first `@`, or the whole `name` without one, e.g. `foo` (`%p`). */
  readonly prefix: string;
  /** The part between the first `@` and the suffix, e.g. `bar`; empty when there is none (`%i`). */
  readonly instance: string;
  /** The template this name belongs to, e.g. `foo@.service`; undefined when the name has no `@`. */
  readonly template: string | undefined;
  /** The suffix including its dot, e.g. `.service`. */
  readonly suffix: string;
  /** The suffix without its dot, e.g. `service`. Not checked against the known types. */
  readonly type: string;
}

/**
 * Splits a unit name the way fleet does. Returns undefined when the name has no `.` (fleet's nil).
 * It does not validate the name: `foo@bar.nonsense` parses; use `validateUnitName` for that.
 */
export function parseUnitName(fullName: string): UnitNameInfo | undefined {
  const dot = fullName.lastIndexOf('.');
  if (dot === -1) return undefined;
  const name = fullName.slice(0, dot);
  const suffix = fullName.slice(dot);
  const at = name.indexOf('@');
  if (at === -1) {
    return { fullName, name, prefix: name, instance: '', template: undefined, suffix, type: suffix.slice(1) };
  }
  const prefix = name.slice(0, at);
  return {
    fullName,
    name,
    prefix,
    instance: name.slice(at + 1),
    template: `${prefix}@${suffix}`,
    suffix,
    type: suffix.slice(1),
  };
}

/** True for a template name such as `foo@.service`: it has a template and an empty instance. */
export function isTemplate(name: string): boolean {
  const info = parseUnitName(name);
  return info?.template !== undefined && info.instance === '';
}

/** True for an instance name such as `foo@1.service`: its instance is non-empty. */
export function isInstance(name: string): boolean {
  const info = parseUnitName(name);
  return info !== undefined && info.instance !== '';
}

/**
 * The template an instance was made from: `web@1.service` gives `web@.service`. Undefined for names
 * that are not instances, including templates themselves.
 */
export function templateOf(name: string): string | undefined {
  const info = parseUnitName(name);
  if (info === undefined || info.instance === '') return undefined;
  return info.template;
}

/**
 * The instance name of a template: (`web@.service`, `1`) gives `web@1.service`. Undefined when
 * `template` is not a template name. The instance is inserted as given; validate the result with
 * `validateUnitName` when it comes from a user.
 */
export function instanceName(template: string, instance: string): string | undefined {
  const info = parseUnitName(template);
  if (info?.template === undefined || info.instance !== '') return undefined;
  return `${info.prefix}@${instance}${info.suffix}`;
}

/** The type of a unit name, without the dot (`service` for `a.b.service`); undefined without a `.`. */
export function unitTypeOf(name: string): string | undefined {
  return parseUnitName(name)?.type;
}

/** True when `type` is one of the types the API accepts (case-sensitive, as fleet checks). */
export function isValidUnitType(type: string): type is UnitType {
  return VALID_TYPE_SET.has(type);
}

/** True when `type` may be used by template and instance names. */
export function isTemplateUnitType(type: string): type is TemplateUnitType {
  return TEMPLATE_TYPE_SET.has(type);
}

/** True when `type` is one fleetctl and the agent recognize. */
export function isRecognizedType(type: string): type is RecognizedUnitType {
  return RECOGNIZED_TYPE_SET.has(type);
}

/**
 * fleet's `unit.RecognizedUnitType(name)`: true when the name ends in `.<type>` for a recognized
 * type. It is a plain suffix test, so `.service` alone counts.
 */
export function hasRecognizedUnitType(name: string): boolean {
  return RECOGNIZED_UNIT_TYPES.some((t) => name.endsWith(`.${t}`));
}

/**
 * fleetctl's `unitNameMangle`: the last element of the argument as a path (Go's `path.Base`), with
 * `.service` appended unless it already ends in a recognized type. `foo` becomes `foo.service`,
 * `foo/bar.socket` becomes `bar.socket`, and `foo.target` becomes `foo.target.service`.
 */
export function mangleUnitName(arg: string): string {
  const base = goPathBase(arg);
  return hasRecognizedUnitType(base) ? base : `${base}.${DEFAULT_UNIT_TYPE}`;
}

/**
 * Go's `path.Base`: trailing slashes are dropped before taking the last element; an empty path gives
 * `.` and a path of only slashes gives `/`. (Node's `path.posix.basename` returns `` for both.)
 */
function goPathBase(p: string): string {
  if (p === '') return '.';
  const trimmed = p.replace(/\/+$/, '');
  if (trimmed === '') return '/';
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/**
 * Checks a unit name and returns the message of the first rule it breaks, or undefined when the
 * name is valid. The rules are fleet's `api.ValidateName` (messages word for word) tightened to
 * everything systemd's `unit_name_is_valid` refuses, so that no name reaches an agent that
 * systemd would not load. In order: not empty; at most 237 UTF-8 bytes (systemd's 255 less what
 * the agent's temporary file name adds; fleet allowed 256); contains `.`; something before the
 * last `.` (systemd refuses `.service`); does not end in `.`; the type after the last `.` is one
 * systemd knows (case-sensitive); a name with `@` has a template type; every character before
 * the last `.` is in `[0-9a-zA-Z]` or one of `:-_.\@`; does not start with `@`.
 */
export function validateUnitName(name: string): string | undefined {
  if (name.length === 0) return 'unit name cannot be empty';
  const bytes = utf8.encode(name).length;
  if (bytes > MAX_UNIT_NAME_BYTES) {
    return (
      `unit name exceeds maximum length (${MAX_UNIT_NAME_BYTES} bytes: systemd's ${UNIT_NAME_MAX - 1} ` +
      `less ${UNIT_FILE_TEMP_EXTRA_BYTES} for the agent's temporary file name), got ${bytes}`
    );
  }
  const dot = name.lastIndexOf('.');
  if (dot === -1) return 'unit name must contain "."';
  if (dot === 0) return `unit name needs a name before ${goQuote(name)}`;
  if (dot === name.length - 1) return 'unit name cannot end in "."';
  const type = name.slice(dot + 1);
  if (!isValidUnitType(type)) return `invalid unit type: ${goQuote(type)}`;
  const stem = name.slice(0, dot);
  if (stem.includes('@') && !isTemplateUnitType(type))
    return `invalid unit type for template: ${goQuote(type)}`;
  for (const char of stem) {
    if (!VALID_NAME_CHARS.has(char)) return `invalid character ${goQuoteRune(codePoint(char))} in unit name`;
  }
  if (name.startsWith('@')) return 'unit name cannot start in "@"';
  return undefined;
}

/** True when `validateUnitName` finds nothing wrong. */
export function isValidUnitName(name: string): boolean {
  return validateUnitName(name) === undefined;
}

/**
 * Validates and splits a name in one step. A failure carries one problem whose `file` is the name
 * itself and whose message is fleet's.
 */
export function checkUnitName(name: string): UnitResult<UnitNameInfo> {
  const message = validateUnitName(name);
  if (message !== undefined) return fail([{ file: name, message }]);
  const info = parseUnitName(name);
  // Unreachable: a valid name contains a '.'. Kept so the type needs no assertion.
  if (info === undefined) return fail([{ file: name, message: 'unit name must contain "."' }]);
  return ok(info);
}

/**
 * Throws a `FleetError` with code `UNIT_NAME_INVALID` and fleet's message when the name is invalid;
 * returns its anatomy otherwise. For boundaries (API handlers, CLI commands) that reject at once.
 */
export function parseValidUnitName(name: string): UnitNameInfo {
  const result = checkUnitName(name);
  if (result.ok) return result.value;
  const message = result.problems[0]?.message ?? 'invalid unit name';
  throw new FleetError('UNIT_NAME_INVALID', `Invalid unit name ${goQuote(name)}: ${message}`);
}

// Go's %q: the quoting fleet's messages use. Kept here because unit names are their main subject.

const GO_PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;
const HEX = '0123456789abcdef';
const REPLACEMENT_CHAR = 0xfffd;

/** The code point of a one-character string; lone surrogates become U+FFFD, as Go would see them. */
function codePoint(char: string): number {
  const cp = char.codePointAt(0) ?? REPLACEMENT_CHAR;
  return cp >= 0xd800 && cp <= 0xdfff ? REPLACEMENT_CHAR : cp;
}

/** Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space. */
function isGoPrintable(cp: number): boolean {
  return cp === 0x20 || GO_PRINTABLE.test(String.fromCodePoint(cp));
}

function hexDigits(value: number, width: number): string {
  let out = '';
  for (let shift = (width - 1) * 4; shift >= 0; shift -= 4) out += HEX.charAt((value >> shift) & 0xf);
  return out;
}

/** Go's `strconv` `appendEscapedRune` for a valid code point, with the given quote character. */
function escapeRune(cp: number, quote: string): string {
  const char = String.fromCodePoint(cp);
  if (char === quote || char === '\\') return `\\${char}`;
  if (isGoPrintable(cp)) return char;
  switch (cp) {
    case 0x07:
      return '\\a';
    case 0x08:
      return '\\b';
    case 0x0c:
      return '\\f';
    case 0x0a:
      return '\\n';
    case 0x0d:
      return '\\r';
    case 0x09:
      return '\\t';
    case 0x0b:
      return '\\v';
    default:
      if (cp < 0x20 || cp === 0x7f) return `\\x${hexDigits(cp, 2)}`;
      if (cp < 0x10000) return `\\u${hexDigits(cp, 4)}`;
      return `\\U${hexDigits(cp, 8)}`;
  }
}

/**
 * Go's `%q` of a rune (`strconv.QuoteRune`): `'x'`, with `\'` and `\\` escaped, printable Unicode
 * kept as is (`'é'`), and other characters as Go escapes (`'\n'`, `'\x00'`, `'\u00a0'`). A code point
 * that is not a valid rune (a surrogate, or beyond U+10FFFF) is shown as U+FFFD, as Go does.
 */
export function goQuoteRune(cp: number): string {
  const valid = Number.isInteger(cp) && cp >= 0 && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
  return `'${escapeRune(valid ? cp : REPLACEMENT_CHAR, "'")}'`;
}

/**
 * Go's `%q` of a string (`strconv.Quote`): double-quoted, `\"` and `\\` escaped, printable Unicode
 * kept, other characters escaped as in `goQuoteRune`. Lone surrogates show as U+FFFD.
 */
export function goQuote(s: string): string {
  let out = '"';
  for (const char of s) out += escapeRune(codePoint(char), '"');
  return `${out}"`;
}
