import { unsafe as iniUnquote } from 'ini';

/**
 * Reads fleet.conf the way fleet's goini did (docs/fleet-compat.md §7.2): options at the top level,
 * `key=value`, `key="value"` or `key='value'`, keys lower-cased, `#` and `;` comment lines,
 * unquoted values ending at `#` or `;`, and a line ending in `\` continued on the next one.
 *
 * The line structure (line numbers, sections, quotes, continuations) is read here because every
 * problem must name its line; the unquoted value text goes through the `ini` package's value
 * decoding (comment stripping, `\;` and `\#` escapes). `ini.parse` itself is not used: it drops
 * line numbers and turns `true`, `false` and `null` into other types.
 *
 * Stricter than goini, which skipped what it could not read: a line that is not `key=value`, an
 * option inside a `[section]` (fleet never read those), an unterminated quote and text after a
 * closing quote are problems.
 */

/** One `key=value` of the file. */
export interface FileSetting {
  /** Lower-cased key. */
  readonly name: string;
  readonly value: string;
  /** 1-based line where the setting starts. */
  readonly line: number;
}

/** A line the reader could not use. */
export interface FileProblem {
  readonly line: number;
  readonly message: string;
}

/** What a config file holds. */
export interface ParsedConfigFile {
  readonly settings: readonly FileSetting[];
  readonly problems: readonly FileProblem[];
}

interface LogicalLine {
  readonly text: string;
  readonly line: number;
}

/** Joins continued lines: the trailing backslash goes, the next line's leading blanks too. */
function logicalLines(text: string): LogicalLine[] {
  const physical = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const out: LogicalLine[] = [];
  let i = 0;
  while (i < physical.length) {
    const start = i;
    let current = (physical[i] ?? '').trimEnd();
    i++;
    const isComment = /^\s*[#;]/.test(current);
    while (!isComment && current.endsWith('\\') && i < physical.length) {
      current = current.slice(0, -1) + (physical[i] ?? '').trim();
      i++;
    }
    out.push({ text: current, line: start + 1 });
  }
  return out;
}

/** Decodes the value part of a `key=value` line, or says why it cannot. */
function decodeValue(raw: string): { value: string } | { problem: string } {
  const s = raw.trim();
  const q = s[0];
  if (q === '"' || q === "'") {
    const end = s.indexOf(q, 1);
    if (end < 0) return { problem: `the value has no closing ${q}` };
    const after = s.slice(end + 1).trim();
    if (after !== '' && !after.startsWith('#') && !after.startsWith(';')) {
      return { problem: `unexpected text after the closing ${q}: ${JSON.stringify(after)}` };
    }
    // goini has no escapes inside quotes: the text between them is the value.
    return { value: s.slice(1, end) };
  }
  return { value: iniUnquote(s) };
}

/** Reads the settings of a fleet.conf text. Pure. */
export function parseConfigFile(text: string): ParsedConfigFile {
  const settings: FileSetting[] = [];
  const problems: FileProblem[] = [];
  let section: string | undefined;
  for (const { text: lineText, line } of logicalLines(text)) {
    const s = lineText.trim();
    if (s === '' || s.startsWith('#') || s.startsWith(';')) continue;
    if (s.startsWith('[')) {
      const m = /^\[([^\]]*)\]\s*([#;].*)?$/.exec(s);
      if (m === null) {
        problems.push({ line, message: `${JSON.stringify(s)} is not a [section] line` });
      } else {
        section = (m[1] ?? '').trim();
      }
      continue;
    }
    const eq = s.indexOf('=');
    if (eq < 0) {
      problems.push({ line, message: `${JSON.stringify(s)} is not key=value` });
      continue;
    }
    const name = s.slice(0, eq).trim().toLowerCase();
    if (name === '' || /\s/.test(name)) {
      problems.push({ line, message: `${JSON.stringify(s.slice(0, eq).trim())} is not an option name` });
      continue;
    }
    if (section !== undefined) {
      problems.push({
        line,
        message: `${name} is inside section [${section}]; fleetd reads options only at the top of the file, before any section`,
      });
      continue;
    }
    const decoded = decodeValue(s.slice(eq + 1));
    if ('problem' in decoded) {
      problems.push({ line, message: `${name}: ${decoded.problem}` });
      continue;
    }
    settings.push({ name, value: decoded.value, line });
  }
  return { settings, problems };
}
