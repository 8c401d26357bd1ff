import { globMatches } from '../unit/glob.js';

/**
 * A Conflicts or Replaces glob, compiled once so the scheduler can test it against thousands of
 * unit names cheaply. The answers are exactly `globMatches` (Go `path.Match`, an invalid pattern
 * never matches); the two shapes users write most get a fast path:
 * - a literal name (no `*`, `?`, `[` or `\`), which matches only itself;
 * - one `*` and otherwise literal, such as `web@*.service`: a prefix, a suffix, and no `/` in
 *   between (a star never matches `/`).
 * Everything else goes through `globMatches`.
 */
export interface NamePattern {
  readonly pattern: string;
  /** The name this pattern matches when it is a literal, so callers can look it up in a map. */
  readonly literal: string | undefined;
  matches(name: string): boolean;
}

const META = /[*?[\\]/;

/** Compiles `pattern`; never throws (an invalid pattern compiles to one that matches nothing). */
export function compileNamePattern(pattern: string): NamePattern {
  if (!META.test(pattern)) {
    return { pattern, literal: pattern, matches: (name) => name === pattern };
  }
  const star = pattern.indexOf('*');
  const rest = pattern.slice(star + 1);
  if (!META.test(pattern.slice(0, star)) && !META.test(rest)) {
    const prefix = pattern.slice(0, star);
    const suffix = rest;
    const fixed = prefix.length + suffix.length;
    return {
      pattern,
      literal: undefined,
      matches: (name) => {
        if (name.length < fixed || !name.startsWith(prefix) || !name.endsWith(suffix)) return false;
        const slash = name.indexOf('/', prefix.length);
        return slash === -1 || slash >= name.length - suffix.length;
      },
    };
  }
  return { pattern, literal: undefined, matches: (name) => globMatches(pattern, name) };
}
