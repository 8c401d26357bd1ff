import { formatProblem, type UnitProblem } from '../../unit/problems.js';
import { parseUnit, type Unit } from '../../unit/unit.js';

/** Unit file text from `[X-Fleet]` lines and an optional ExecStart, for short test cases. */
export function unitText(fleetLines: readonly string[], execStart = '/bin/sleep infinity'): string {
  const fleet = fleetLines.length > 0 ? `\n[X-Fleet]\n${fleetLines.join('\n')}\n` : '';
  return `[Service]\nExecStart=${execStart}\n${fleet}`;
}

/** Parses a unit that the test expects to be valid; throws with every problem otherwise. */
export function validUnit(name: string, fleetLines: readonly string[] = []): Unit {
  const r = parseUnit(name, unitText(fleetLines));
  if (!r.ok) throw new Error(`expected ${name} to be valid: ${r.problems.map(formatProblem).join('; ')}`);
  return r.value;
}

/** Parses a unit that the test expects to be invalid; returns its problems. */
export function unitProblems(
  name: string,
  fleetLines: readonly string[] = [],
  text?: string,
): readonly UnitProblem[] {
  const r = parseUnit(name, text ?? unitText(fleetLines));
  if (r.ok) throw new Error(`expected ${name} to be invalid`);
  return r.problems;
}
