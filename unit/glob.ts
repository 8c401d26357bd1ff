/**
 * Go's `path.Match`, which fleet uses for `Conflicts` and `Replaces` patterns.
 *
 * Syntax: `*` matches any run of characters except `/`; `?` matches one character except `/`;
 * `[abc]`, `[a-z]` and `[^a-z]` match one character in (or, with `^`, not in) a class; `\c` matches
 * `c` literally, inside classes too. A class needs at least one range; `-` and `]` must be escaped
 * to be literal in one; a `\` cannot end the pattern.
 *
 * Like Go, the matcher works on UTF-8 bytes: literals compare bytewise, while `?` and classes
 * consume one rune (an invalid byte counts as one rune, U+FFFD). It never backtracks across stars:
 * each star chunk takes its leftmost match, which is exact for these patterns and keeps the cost at
 * O(pattern × name) for any input.
 *
 * Malformed patterns follow Go 1.16 and later: they are reported as bad whatever the name. Older
 * Go (the one fleet v1.0.0 was built with) sometimes returned a plain `false` instead, when the
 * malformed part came after a mismatch; in both versions such a pattern never matches.
 */

/** The outcome of one match: fleet logs a bad pattern at debug level and treats it as no match. */
export type GlobMatch = 'match' | 'no-match' | 'bad-pattern';

const STAR = 0x2a; // *
const QUESTION = 0x3f; // ?
const LBRACKET = 0x5b; // [
const RBRACKET = 0x5d; // ]
const CARET = 0x5e; // ^
const DASH = 0x2d; // -
const BACKSLASH = 0x5c; // \
const SLASH = 0x2f; // /
const RUNE_ERROR = 0xfffd;

// matchChunk's results besides "matched, the name continues at index i".
const NO_MATCH = -1;
const BAD_PATTERN = -2;

const utf8 = new TextEncoder();
const NOTHING = new Uint8Array(0);

/**
 * Matches `name` against the Go `path.Match` pattern. Never throws: a malformed pattern gives
 * `'bad-pattern'`. Compare the result with `'match'`; do not test it for truthiness.
 */
export function matchGlob(pattern: string, name: string): GlobMatch {
  const p = utf8.encode(pattern);
  const s = utf8.encode(name);
  let pi = 0;
  let si = 0;
  nextChunk: while (pi < p.length) {
    const { star, start, end } = scanChunk(p, pi);
    pi = end;
    if (star && start === end) {
      // A trailing star matches the rest of the name unless it has a '/'.
      return s.indexOf(SLASH, si) === -1 ? 'match' : 'no-match';
    }
    // Look for a match at the current position. The last chunk must also use up the name.
    const at = matchChunk(p, start, end, s, si);
    if (at >= 0 && (at === s.length || pi < p.length)) {
      si = at;
      continue;
    }
    if (at === BAD_PATTERN) return 'bad-pattern';
    if (star) {
      // Let the star swallow one more byte at a time, but never a '/'.
      for (let i = si; i < s.length && s[i] !== SLASH; i++) {
        const skipped = matchChunk(p, start, end, s, i + 1);
        if (skipped >= 0) {
          if (pi === p.length && skipped < s.length) continue;
          si = skipped;
          continue nextChunk;
        }
        if (skipped === BAD_PATTERN) return 'bad-pattern';
      }
    }
    // No match; Go still reports a malformed remainder of the pattern.
    return isWellFormedFrom(p, pi) ? 'no-match' : 'bad-pattern';
  }
  return si === s.length ? 'match' : 'no-match';
}

/** True when `name` matches; a malformed pattern never matches (fleet's use of `path.Match`). */
export function globMatches(pattern: string, name: string): boolean {
  return matchGlob(pattern, name) === 'match';
}

/** True when the pattern is well formed, i.e. `path.Match` would never report `ErrBadPattern`. */
export function isValidGlob(pattern: string): boolean {
  return isWellFormedFrom(utf8.encode(pattern), 0);
}

/** True when every chunk of `p` from index `from` on parses. */
function isWellFormedFrom(p: Uint8Array, from: number): boolean {
  let pi = from;
  while (pi < p.length) {
    const { start, end } = scanChunk(p, pi);
    pi = end;
    // Matching against nothing still parses the whole chunk.
    if (matchChunk(p, start, end, NOTHING, 0) === BAD_PATTERN) return false;
  }
  return true;
}

/**
 * Go's `scanChunk`: skips the stars at `from` and finds the following chunk, which runs up to the
 * next star outside a class (or the end). Escaped characters never end a chunk.
 */
function scanChunk(p: Uint8Array, from: number): { star: boolean; start: number; end: number } {
  let i = from;
  let star = false;
  while (p[i] === STAR) {
    i++;
    star = true;
  }
  const start = i;
  let inRange = false;
  for (; i < p.length; i++) {
    const c = p[i];
    if (c === BACKSLASH) {
      // A trailing backslash is reported by matchChunk.
      if (i + 1 < p.length) i++;
    } else if (c === LBRACKET) {
      inRange = true;
    } else if (c === RBRACKET) {
      inRange = false;
    } else if (c === STAR && !inRange) {
      break;
    }
  }
  return { star, start, end: i };
}

/**
 * Go's `matchChunk`: matches the star-free chunk `p[start, end)` against `s` from `si`. Returns the
 * index in `s` after the match, NO_MATCH, or BAD_PATTERN. After a mismatch it keeps parsing the
 * chunk, without reading `s`, so a malformed chunk is reported whatever the name.
 */
function matchChunk(p: Uint8Array, start: number, end: number, s: Uint8Array, si: number): number {
  let failed = false;
  let c = start;
  let i = si;
  while (c < end) {
    if (!failed && i >= s.length) failed = true;
    const op = p[c];
    if (op === LBRACKET) {
      let r = -1;
      if (!failed) {
        const [rune, width] = decodeRune(s, i, s.length);
        r = rune;
        i += width;
      }
      c++;
      let negated = false;
      if (c < end && p[c] === CARET) {
        negated = true;
        c++;
      }
      let matched = false;
      let ranges = 0;
      for (;;) {
        if (c < end && p[c] === RBRACKET && ranges > 0) {
          c++;
          break;
        }
        const lo = classChar(p, c, end);
        if (lo === undefined) return BAD_PATTERN;
        c = lo.next;
        let hi = lo.rune;
        // classChar guarantees that c < end here.
        if (p[c] === DASH) {
          const upper = classChar(p, c + 1, end);
          if (upper === undefined) return BAD_PATTERN;
          c = upper.next;
          hi = upper.rune;
        }
        if (lo.rune <= r && r <= hi) matched = true;
        ranges++;
      }
      if (matched === negated) failed = true;
    } else if (op === QUESTION) {
      if (!failed) {
        if (s[i] === SLASH) failed = true;
        i += decodeRune(s, i, s.length)[1];
      }
      c++;
    } else {
      if (op === BACKSLASH) {
        c++;
        if (c >= end) return BAD_PATTERN;
      }
      if (!failed) {
        if (p[c] !== s[i]) failed = true;
        i++;
      }
      c++;
    }
  }
  return failed ? NO_MATCH : i;
}

/**
 * Go's `getEsc`: one possibly escaped character of a class, at `c`. Undefined (a bad pattern) when
 * the class ends here, the character is an unescaped `-` or `]`, or nothing follows it in the chunk.
 */
function classChar(p: Uint8Array, at: number, end: number): { rune: number; next: number } | undefined {
  let c = at;
  if (c >= end || p[c] === DASH || p[c] === RBRACKET) return undefined;
  if (p[c] === BACKSLASH) {
    c++;
    if (c >= end) return undefined;
  }
  const [rune, width] = decodeRune(p, c, end);
  if (rune === RUNE_ERROR && width === 1) return undefined;
  const next = c + width;
  if (next >= end) return undefined;
  return { rune, next };
}

/**
 * Go's `utf8.DecodeRune` on `b[i, end)`: the rune and its width in bytes. Anything that is not a
 * complete, shortest-form, non-surrogate encoding decodes as (U+FFFD, 1), so a position in the middle
 * of a character (where a star's byte-wise skip can land) reads as one invalid rune, as in Go.
 */
function decodeRune(b: Uint8Array, i: number, end: number): readonly [number, number] {
  const b0 = b[i];
  if (b0 === undefined || i >= end) return [RUNE_ERROR, 0];
  if (b0 < 0x80) return [b0, 1];
  let width: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    width = 2;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    width = 3;
    if (b0 === 0xe0) lo = 0xa0; // no overlong forms
    if (b0 === 0xed) hi = 0x9f; // no surrogates
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    width = 4;
    if (b0 === 0xf0) lo = 0x90; // no overlong forms
    if (b0 === 0xf4) hi = 0x8f; // nothing beyond U+10FFFF
  } else {
    return [RUNE_ERROR, 1];
  }
  if (i + width > end) return [RUNE_ERROR, 1];
  let rune = b0 & (0xff >> (width + 1));
  for (let k = 1; k < width; k++) {
    const cont = b[i + k] ?? 0;
    const min = k === 1 ? lo : 0x80;
    const max = k === 1 ? hi : 0xbf;
    if (cont < min || cont > max) return [RUNE_ERROR, 1];
    rune = (rune << 6) | (cont & 0x3f);
  }
  return [rune, width];
}
