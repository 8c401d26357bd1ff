import type { UnitOptionData, UnitRecord } from '../../registry/model.js';
import { unitFromOptions } from '../../unit/unit.js';

/** A unit record from unit-file options, as a submission stores it; throws on an invalid unit. */
export function benchUnit(name: string, options: readonly UnitOptionData[]): UnitRecord {
  const r = unitFromOptions(name, options);
  if (!r.ok) throw new Error(`bad benchmark unit ${name}`);
  return { name, hash: r.value.hash, options, fleet: r.value.fleet };
}
