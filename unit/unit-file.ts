import { fail, ok, type UnitProblem, type UnitResult } from './problems.js';

/** One `Name=Value` assignment of a unit file, in file order; repeated keys are kept. */
export interface UnitOption {
  readonly section: string;
  readonly name: string;
  /** The value as systemd reads it: trimmed, line continuations joined. */
  readonly value: string;
  /** 1-based line the assignment starts on; 0 for options built in code rather than parsed. */
  readonly line: number;
}

/** A parsed unit file: its options in file order. */
export interface UnitFile {
  readonly options: readonly UnitOption[];
}

/**
 * systemd's LONG_LINE_MAX: the longest line, continuations joined, that systemd reads (1 MiB).
 * fleet's go-systemd parser stopped at 2048 bytes; we follow systemd, which runs the unit.
 */
export const MAX_LINE_BYTES = 1024 * 1024;

/** Whitespace as systemd strips it around keys and values (`WHITESPACE`: space, tab, CR, LF). */
const WHITESPACE = ' \t\r\n';

const BOM = '\uFEFF';

/** A lone UTF-16 surrogate has no UTF-8 encoding: such a string is not valid UTF-8 text. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function strip(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && WHITESPACE.includes(s.charAt(start))) start++;
  while (end > start && WHITESPACE.includes(s.charAt(end - 1))) end--;
  return s.slice(start, end);
}

function stripLeading(s: string): string {
  let start = 0;
  while (start < s.length && WHITESPACE.includes(s.charAt(start))) start++;
  return s.slice(start);
}

/** True when the line ends in an unescaped backslash, i.e. continues on the next line. */
function endsInContinuation(s: string): boolean {
  let backslashes = 0;
  for (let i = s.length - 1; i >= 0 && s.charAt(i) === '\\'; i--) backslashes++;
  return backslashes % 2 === 1;
}

function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

interface DecodedText {
  readonly text?: string;
  readonly problem?: UnitProblem;
}

/** Decodes bytes as strict UTF-8, naming the first line that holds an invalid sequence. */
function decode(input: string | Uint8Array, file: string): DecodedText {
  if (typeof input === 'string') {
    const bad = LONE_SURROGATE.exec(input);
    if (bad === null) return { text: input };
    const line = input.slice(0, bad.index).split('\n').length;
    return { problem: { file, line, message: 'is not valid UTF-8 (a lone surrogate code unit)' } };
  }
  try {
    return { text: new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(input) };
  } catch {
    // Find the line: decode line by line until one fails.
    let line = 1;
    let start = 0;
    const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
    for (let i = 0; i <= input.length; i++) {
      if (i === input.length || input[i] === 0x0a) {
        try {
          decoder.decode(input.subarray(start, i));
        } catch {
          return { problem: { file, line, message: 'is not valid UTF-8' } };
        }
        line++;
        start = i + 1;
      }
    }
    return { problem: { file, message: 'is not valid UTF-8' } };
  }
}

interface PendingAssignment {
  /**
   * The pieces of the logical line so far, each continuation backslash already replaced by a
   * space. Kept as pieces and joined once, so a long run of continued lines costs linear time.
   */
  readonly parts: string[];
  /** UTF-8 length of the pieces, kept as a running sum for the same reason. */
  bytes: number;
  /** Physical line the logical line started on. */
  readonly line: number;
}

/**
 * Parses a unit file following systemd's syntax (systemd.syntax(7), `config_parse`):
 * - lines end in LF or CRLF; a leading byte-order mark is ignored; an empty file is valid;
 * - empty lines and lines whose first non-blank character is `#` or `;` are comments, also in the
 *   middle of a continued line (systemd skips them and goes on joining);
 * - a line ending in an unescaped backslash continues on the next one: the backslash becomes a
 *   space and the next line is appended as is (its leading whitespace kept), as systemd does;
 * - `[Section]` opens a section; anything after the `]` is an error;
 * - `Name=Value` splits at the first `=`; name and value are trimmed of whitespace.
 *
 * Stricter than systemd, which only warns and goes on: an assignment before the first section,
 * a line with no `=`, an empty option or section name, invalid UTF-8, a NUL byte, a carriage
 * return that does not end a line, and a line over 1 MiB are errors. Every problem of the file
 * is reported, not just the first. Never throws.
 */
export function parseUnitFile(input: string | Uint8Array, file: string): UnitResult<UnitFile> {
  const decoded = decode(input, file);
  if (decoded.text === undefined) return fail(decoded.problem === undefined ? [] : [decoded.problem]);
  let text = decoded.text;
  if (text.startsWith(BOM)) text = text.slice(BOM.length);

  const problems: UnitProblem[] = [];
  const options: UnitOption[] = [];
  // undefined: no section yet; null: after a broken header, whose error covers its assignments.
  let section: string | null | undefined;
  let pending: PendingAssignment | undefined;

  const parseLogicalLine = (raw: string, line: number): void => {
    const l = strip(raw);
    if (l === '') return;
    if (l.startsWith('[')) {
      if (!l.endsWith(']') || l.length < 2) {
        problems.push({ file, line, message: `invalid section header ${JSON.stringify(l)}: text after "]"` });
        section = null;
        return;
      }
      const name = l.slice(1, -1);
      if (name === '') {
        problems.push({ file, line, message: 'section name is empty' });
        section = null;
        return;
      }
      if (name.includes('[') || name.includes(']')) {
        problems.push({
          file,
          line,
          message: `invalid section header ${JSON.stringify(l)}: brackets in the name`,
        });
        section = null;
        return;
      }
      section = name;
      return;
    }
    const eq = l.indexOf('=');
    if (eq < 0) {
      problems.push({
        file,
        line,
        ...(typeof section === 'string' ? { section } : {}),
        message: `expected Name=Value, got ${JSON.stringify(truncate(l))} (missing "=")`,
      });
      return;
    }
    const name = strip(l.slice(0, eq));
    const value = strip(l.slice(eq + 1));
    if (section === null) return;
    if (section === undefined) {
      problems.push({
        file,
        line,
        ...(name === '' ? {} : { option: name }),
        message: 'assignment outside of any section (add a [Section] header above it)',
      });
      return;
    }
    if (name === '') {
      problems.push({ file, line, section, message: 'option name is empty' });
      return;
    }
    if (endsInContinuation(value)) {
      // Only possible as `\ \` at a line end: no single line can hold this value again.
      problems.push({
        file,
        line,
        section,
        option: name,
        message:
          'value ends in a lone backslash (after trimming), which cannot be written back; remove or double it',
      });
      return;
    }
    options.push({ section, name, value, line });
  };

  const lines = text.split('\n');
  // A final LF ends the last line; it does not open an empty one.
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();

  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let physical = lines[i] ?? '';
    if (physical.endsWith('\r')) physical = physical.slice(0, -1);

    if (physical.includes('\0')) {
      problems.push({ file, line: lineNo, message: 'contains a NUL byte' });
      continue;
    }
    if (physical.includes('\r')) {
      problems.push({ file, line: lineNo, message: 'contains a carriage return that does not end the line' });
      continue;
    }
    if (utf8Length(physical) > MAX_LINE_BYTES) {
      problems.push({ file, line: lineNo, message: `line too long (max ${MAX_LINE_BYTES} bytes)` });
      pending = undefined;
      continue;
    }

    // systemd skips comment lines before looking at continuations, so a comment inside a
    // continued value is dropped and the value goes on after it.
    const lead = stripLeading(physical);
    if (lead.startsWith('#') || lead.startsWith(';')) continue;

    // Every piece of a pending line ends in the space that replaced its backslash, so whether
    // the line continues depends only on the end of this physical line.
    const continues = endsInContinuation(physical);
    const piece = continues ? `${physical.slice(0, -1)} ` : physical;
    if (pending !== undefined) {
      pending.parts.push(piece);
      pending.bytes += utf8Length(piece);
      if (pending.bytes > MAX_LINE_BYTES) {
        problems.push({
          file,
          line: pending.line,
          message: `continued line too long (max ${MAX_LINE_BYTES} bytes)`,
        });
        pending = undefined;
        continue;
      }
    } else if (continues) {
      pending = { parts: [piece], bytes: utf8Length(piece), line: lineNo };
      continue;
    } else {
      parseLogicalLine(physical, lineNo);
      continue;
    }
    if (continues) continue;
    const done: PendingAssignment = pending;
    pending = undefined;
    parseLogicalLine(done.parts.join(''), done.line);
  }
  // A continuation at the end of the file ends there (systemd parses what it has).
  if (pending !== undefined) parseLogicalLine(pending.parts.join(''), pending.line);

  return problems.length > 0 ? fail(problems) : ok({ options });
}

function truncate(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Options grouped by section, sections in order of first appearance (fleet's canonical order). */
export function groupBySection(options: readonly UnitOption[]): Map<string, UnitOption[]> {
  const groups = new Map<string, UnitOption[]>();
  for (const o of options) {
    const group = groups.get(o.section);
    if (group === undefined) groups.set(o.section, [o]);
    else group.push(o);
  }
  return groups;
}

/** All values of one option in one section, in file order. */
export function optionValues(file: UnitFile, section: string, name: string): string[] {
  return file.options.filter((o) => o.section === section && o.name === name).map((o) => o.value);
}
