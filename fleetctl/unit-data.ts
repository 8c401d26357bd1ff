import { parseSystemdBoolean } from '../unit/booleans.js';
import { FLEET_SECTION, splitWords } from '../unit/fleet-options.js';
import { serializeUnitFile, unitHash } from '../unit/serialize.js';
import type { UnitOption } from '../unit/unit-file.js';
import type { ApiUnitOption } from './client.js';

/**
 * What fleetctl reads out of a unit's options as the API returns them: whether it is global, its
 * hash and canonical text (the same functions the server and agents use), and its description.
 */

function asUnitOptions(options: readonly ApiUnitOption[]): UnitOption[] {
  return options.map((o) => ({ section: o.section, name: o.name, value: o.value, line: 0 }));
}

/** True when the unit's last `[X-Fleet] Global` value is a true boolean word. */
export function isGlobalUnit(options: readonly ApiUnitOption[]): boolean {
  const last = options.filter((o) => o.section === FLEET_SECTION && o.name === 'Global').at(-1);
  if (last === undefined) return false;
  const { words } = splitWords(last.value);
  return words.length === 1 && parseSystemdBoolean(words[0] ?? '') === true;
}

/** SHA-1 of the canonical form: what `list-unit-files` shows and `--replace` compares. */
export function optionsHash(options: readonly ApiUnitOption[]): string {
  return unitHash(asUnitOptions(options));
}

/** The canonical unit file text (`fleetctl cat`). */
export function canonicalText(options: readonly ApiUnitOption[]): string {
  return serializeUnitFile(asUnitOptions(options));
}

/** The first `[Unit] Description`, or undefined. */
export function unitDescription(options: readonly ApiUnitOption[]): string | undefined {
  return options.find((o) => o.section === 'Unit' && o.name === 'Description')?.value;
}
