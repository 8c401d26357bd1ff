import { readFleetOptions, type FleetOptions } from './fleet-options.js';
import { fail, ok, type UnitProblem, type UnitResult } from './problems.js';
import { unitFileFromOptions, unitHash } from './serialize.js';
import { parseUnitFile, type UnitFile } from './unit-file.js';
import { validateUnitName } from './unit-name.js';

/**
 * A unit as fleet-ts knows it: a valid name, its parsed file, the hash of the file's canonical
 * form, and its [X-Fleet] scheduling options with specifiers expanded. Contents never change
 * once submitted; a different file under the same name is a different unit (a replace).
 */
export interface Unit {
  readonly name: string;
  readonly file: UnitFile;
  /** SHA-1 of the canonical form, 40 hex characters (see serialize.ts). */
  readonly hash: string;
  readonly fleet: FleetOptions;
  /** Things worth telling the user that do not make the unit invalid (deprecated options). */
  readonly warnings: readonly UnitProblem[];
}

export interface ParseUnitOptions {
  /** How to name the input in problems (a path, say); defaults to the unit name. */
  readonly file?: string;
}

function build(
  name: string,
  file: UnitFile,
  display: string,
  earlier: readonly UnitProblem[],
): UnitResult<Unit> {
  const fleet = readFleetOptions(file, display, name);
  const problems = [...earlier, ...fleet.problems];
  if (problems.length > 0) return fail(problems);
  return ok({ name, file, hash: unitHash(file), fleet: fleet.options, warnings: fleet.warnings });
}

function nameProblems(name: string, display: string): UnitProblem[] {
  const bad = validateUnitName(name);
  return bad === undefined
    ? []
    : [{ file: display, message: `invalid unit name ${JSON.stringify(name)}: ${bad}` }];
}

/**
 * Parses and validates a unit from its file contents: the name (fleet's rules), the file
 * (systemd's syntax) and the [X-Fleet] options (fleet's rules, with our stricter checks).
 * Every problem is reported at once; nothing is thrown.
 */
export function parseUnit(
  name: string,
  contents: string | Uint8Array,
  opts: ParseUnitOptions = {},
): UnitResult<Unit> {
  const display = opts.file ?? name;
  const names = nameProblems(name, display);
  const parsed = parseUnitFile(contents, display);
  if (!parsed.ok) return fail([...names, ...parsed.problems]);
  return build(name, parsed.value, display, names);
}

/**
 * Builds and validates a unit from options given as data (the HTTP API's `options`), proving
 * they survive the canonical form unchanged. The same checks as `parseUnit`.
 */
export function unitFromOptions(
  name: string,
  options: readonly { readonly section: string; readonly name: string; readonly value: string }[],
  opts: ParseUnitOptions = {},
): UnitResult<Unit> {
  const display = opts.file ?? name;
  const names = nameProblems(name, display);
  const built = unitFileFromOptions(options, display);
  if (!built.ok) return fail([...names, ...built.problems]);
  return build(name, built.value, display, names);
}
