import type { Command } from 'commander';
import { parseFields, parseOutputFormat, type OutputFormat } from './fields.js';
import { boolFlag, flagSet, stringFlag, stringValue } from './flags.js';

/**
 * The flags the list commands share: `--fields`, `-l`/`--full` (and fleet's `--l`),
 * `--no-legend`, and `--output table|json`.
 */

/** The user's choices for one list command. */
export interface ListChoices {
  readonly fields: string[];
  readonly full: boolean;
  readonly legend: boolean;
  readonly format: OutputFormat;
}

/** Adds the list flags; `valid` is shown in the `--fields` help. */
export function addListFlags(cmd: Command, defaults: string, valid: readonly string[]): Command {
  stringFlag(
    cmd,
    '--fields <fields>',
    `Columns to print, comma-separated. Valid fields are "${valid.join(',')}".`,
    defaults,
  );
  boolFlag(cmd, '-l, --full', 'Do not ellipsize fields on output (full machine IDs and hashes).', ['l']);
  boolFlag(cmd, '--no-legend', 'Do not print a legend (column headers).');
  stringFlag(
    cmd,
    '--output <format>',
    'Output format: "table" (tab-aligned, as fleet) or "json" (full values, null when empty).',
    'table',
  );
  return cmd;
}

/** Reads the list flags; throws `USAGE_INVALID` with fleet's messages for bad `--fields`. */
export function listChoices(cmd: Command, defaults: string, valid: readonly string[]): ListChoices {
  return {
    fields: parseFields(stringValue(cmd, 'fields', defaults), valid),
    full: flagSet(cmd, 'full', ['l']),
    legend: flagSet(cmd, 'legend'),
    format: parseOutputFormat(stringValue(cmd, 'output', 'table')),
  };
}
