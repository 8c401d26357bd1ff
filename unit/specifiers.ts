import { parseUnitName, type UnitNameInfo } from './unit-name.js';

/**
 * Specifier expansion in `[X-Fleet]` values (fleet's `job.unitPrintf`). fleet expands these, and only
 * these, in X-Fleet values; specifiers in the other sections are left for systemd to expand when it
 * loads the unit.
 *
 * | specifier | becomes                      | for `foo@bar.service` |
 * |-----------|------------------------------|-----------------------|
 * | `%n`      | the full name                | `foo@bar.service`     |
 * | `%N`      | the name without its suffix  | `foo@bar`             |
 * | `%p`      | the prefix                   | `foo`                 |
 * | `%i`      | the instance (may be empty)  | `bar`                 |
 * | `%%`      | a literal `%`                | `%`                   |
 *
 * Like fleet, nothing is unescaped (the docs call `%N` and `%p` "unescaped", the code never was),
 * and any other `%x`, or a `%` at the end, is left as is.
 *
 * One deliberate difference: fleet ran four `strings.Replace` passes (n, N, p, i in that order) and
 * knew no `%%`. We expand in a single left-to-right pass and, like systemd, read `%%` as `%`, so a
 * value can contain a literal `%i`. For valid unit names (which cannot contain `%`) the two agree on
 * every value that has no `%%`; fleet would have turned `%%i` into `%bar`, we give `%i`.
 */

/** Expands the specifiers in `value` for the given unit-name anatomy. */
export function expandSpecifiersFor(value: string, unit: UnitNameInfo): string {
  return value.replace(/%(.?)/gsu, (whole, spec: string) => {
    switch (spec) {
      case 'n':
        return unit.fullName;
      case 'N':
        return unit.name;
      case 'p':
        return unit.prefix;
      case 'i':
        return unit.instance;
      case '%':
        return '%';
      default:
        return whole;
    }
  });
}

/**
 * Expands the specifiers in `value` for the unit called `unitName`. As in fleet, expansion happens
 * only when the name contains a `.` (is a unit name at all); otherwise the value is returned as is.
 */
export function expandSpecifiers(value: string, unitName: string): string {
  const unit = parseUnitName(unitName);
  return unit === undefined ? value : expandSpecifiersFor(value, unit);
}
