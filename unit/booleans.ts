/**
 * The two boolean dialects a fleet unit file meets.
 *
 * systemd reads its own options with `parse_boolean`: `1 yes y true t on` are true, `0 no n false
 * f off` are false (ASCII case-insensitive), and anything else is an error the caller reports.
 *
 * fleet reads `[X-Fleet] Global=` with its own `isTruthyValue`: `true yes 1 on t` (lower-cased) are
 * true and **everything else is false**, silently. So `Global=y` makes a unit global for systemd's
 * reading but not for fleet's, and `Global=maybe` is simply not global. fleet-ts uses
 * `isTruthyValue` wherever fleet did, so existing units schedule the same way, and
 * `parseSystemdBoolean` where it wants to tell "false" from "not a boolean" (e.g. to warn).
 */

const SYSTEMD_TRUE: ReadonlySet<string> = new Set(['1', 'yes', 'y', 'true', 't', 'on']);
const SYSTEMD_FALSE: ReadonlySet<string> = new Set(['0', 'no', 'n', 'false', 'f', 'off']);
const FLEET_TRUTHY: ReadonlySet<string> = new Set(['true', 'yes', '1', 'on', 't']);

/**
 * Lower-cases ASCII letters only, like C's `strcasecmp`. For the words compared here this also equals
 * Go's Unicode `strings.ToLower`: the only non-ASCII letters that lower-case to ASCII are U+0130 (to
 * `i`) and U+212A (to `k`), and neither letter occurs in a boolean word.
 */
function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/**
 * systemd's `parse_boolean`: true or false for its boolean words, case-insensitively; undefined for
 * anything else, including the empty string. No trimming: unit-file values arrive trimmed already.
 */
export function parseSystemdBoolean(value: string): boolean | undefined {
  const word = asciiLower(value);
  if (SYSTEMD_TRUE.has(word)) return true;
  if (SYSTEMD_FALSE.has(word)) return false;
  return undefined;
}

/**
 * fleet's `isTruthyValue`, used for `[X-Fleet] Global`: true when the lower-cased value is one of
 * `true yes 1 on t`; false for every other string (note: `y` is false here).
 */
export function isTruthyValue(value: string): boolean {
  return FLEET_TRUTHY.has(asciiLower(value));
}
