import { FleetError } from '../lib/errors.js';
import { formatTable } from './table.js';

/**
 * The list commands' columns: `--fields` picks and orders them, the header is their names in
 * upper case (`--no-legend` drops it), `--full` widens machine IDs and hashes, and `--output json`
 * prints the same fields as a JSON array with full values instead of a table.
 */

/** How one field of a row is shown: in the table (fleet's text, `-` when empty) and in JSON. */
export interface FieldDef<R> {
  readonly table: (row: R, full: boolean) => string;
  readonly json: (row: R) => unknown;
}

/** The fields of one list command, in the order fleet lists them as valid. */
export type FieldDefs<R> = Readonly<Record<string, FieldDef<R>>>;

/** The output formats of the list commands. */
export const OUTPUT_FORMATS = ['table', 'json'] as const;
/** `table` or `json`. */
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Reads `--output`; throws `USAGE_INVALID` for anything but `table` or `json`. */
export function parseOutputFormat(value: string): OutputFormat {
  if (value === 'table' || value === 'json') return value;
  throw new FleetError(
    'USAGE_INVALID',
    `Invalid output format ${JSON.stringify(value)}: use ${OUTPUT_FORMATS.join(' or ')}`,
  );
}

/**
 * Splits `--fields` with fleet's rules and messages: an empty value is `Must define output format`,
 * an unknown key `Invalid key in output format: "bogus"`. Throws `USAGE_INVALID`.
 */
export function parseFields(value: string, valid: readonly string[]): string[] {
  if (value === '') throw new FleetError('USAGE_INVALID', 'Must define output format');
  const fields = value.split(',');
  for (const f of fields) {
    if (!valid.includes(f))
      throw new FleetError('USAGE_INVALID', `Invalid key in output format: ${JSON.stringify(f)}`);
  }
  return fields;
}

/** What a list command prints, given its rows and the user's choices. */
export function renderList<R>(
  rows: readonly R[],
  defs: FieldDefs<R>,
  fields: readonly string[],
  options: { readonly full: boolean; readonly legend: boolean; readonly format: OutputFormat },
): string {
  const picked = fields.map((f) => {
    const def = defs[f];
    if (def === undefined)
      throw new FleetError('USAGE_INVALID', `Invalid key in output format: ${JSON.stringify(f)}`);
    return [f, def] as const;
  });
  if (options.format === 'json') {
    const objects = rows.map((row) => Object.fromEntries(picked.map(([f, def]) => [f, def.json(row)])));
    return `${JSON.stringify(objects, null, 2)}\n`;
  }
  const lines: string[][] = [];
  if (options.legend) lines.push(picked.map(([f]) => f.toUpperCase()));
  for (const row of rows) lines.push(picked.map(([, def]) => def.table(row, options.full)));
  return formatTable(lines);
}

/** fleet's placeholder for an empty value. */
export function dash(value: string | undefined): string {
  return value === undefined || value === '' ? '-' : value;
}

/** JSON's empty value: `null` instead of an empty string or a missing field. */
export function orNull(value: string | undefined): string | null {
  return value === undefined || value === '' ? null : value;
}
