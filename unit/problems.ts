import { FleetError, type FleetErrorCode } from '../lib/errors.js';

/**
 * One thing wrong with a unit file or its name. The parser and validators collect every problem
 * of a file and report them together, so a user fixes a file in one round trip.
 */
export interface UnitProblem {
  /** The file (or unit name) the problem is in, as the user would recognise it. */
  readonly file: string;
  /** 1-based line number, when the problem belongs to one line. */
  readonly line?: number;
  /** The section the offending option is in, e.g. `X-Fleet`. */
  readonly section?: string;
  /** The offending option's name, e.g. `MachineOf`. */
  readonly option?: string;
  /** Why it is wrong, in a sentence fragment without the location. */
  readonly message: string;
}

/** The outcome of a check that may find several problems at once: absence of problems is a value. */
export type UnitResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly problems: readonly UnitProblem[] };

export function ok<T>(value: T): UnitResult<T> {
  return { ok: true, value };
}

export function fail<T>(problems: readonly UnitProblem[]): UnitResult<T> {
  return { ok: false, problems };
}

/**
 * Renders a problem the way every fleet-ts surface shows it:
 * `web.service line 7: [X-Fleet] MachineOf: needs a unit name, got ""`.
 */
export function formatProblem(p: UnitProblem): string {
  let where = p.file;
  if (p.line !== undefined) where += ` line ${p.line}`;
  let what = '';
  if (p.section !== undefined && p.option !== undefined) what = `[${p.section}] ${p.option}: `;
  else if (p.section !== undefined) what = `[${p.section}]: `;
  else if (p.option !== undefined) what = `${p.option}: `;
  return `${where}: ${what}${p.message}`;
}

/**
 * Thrown where a caller asked for a unit and the input had problems (e.g. `parseUnitOrThrow`).
 * The message lists every problem, one per line; `problems` keeps them structured.
 */
export class UnitError extends FleetError {
  override readonly name = 'UnitError';
  readonly problems: readonly UnitProblem[];

  constructor(code: FleetErrorCode, problems: readonly UnitProblem[]) {
    const lines = problems.map(formatProblem);
    const head = problems.length === 1 ? '' : `${problems.length} problems:\n`;
    super(code, head + lines.join('\n'));
    this.problems = problems;
  }
}

/** Unwraps a result, throwing a typed UnitError with all problems when it failed. */
export function unwrap<T>(result: UnitResult<T>, code: FleetErrorCode): T {
  if (result.ok) return result.value;
  throw new UnitError(code, result.problems);
}
