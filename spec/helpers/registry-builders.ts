import type { MachineRecord, UnitRecord, UnitStateRecord } from '../../registry/model.js';
import { formatProblem } from '../../unit/problems.js';
import { parseUnit } from '../../unit/unit.js';
import { unitText } from './unit-builders.js';

/**
 * A stored-unit record parsed and validated like a real submission. A different `execStart`
 * gives a different unit (another hash) under the same name.
 */
export function unitRecord(
  name: string,
  fleetLines: readonly string[] = [],
  execStart = '/bin/sleep infinity',
): UnitRecord {
  const r = parseUnit(name, unitText(fleetLines, execStart));
  if (!r.ok) throw new Error(r.problems.map(formatProblem).join('; '));
  const u = r.value;
  return {
    name: u.name,
    hash: u.hash,
    options: u.file.options.map((o) => ({ section: o.section, name: o.name, value: o.value })),
    fleet: u.fleet,
  };
}

export function machineRecord(
  id: string,
  metadata: Record<string, string> = {},
  publicIp = '10.250.0.10',
): MachineRecord {
  return { id, publicIp, metadata, version: '0.1.0' };
}

export function unitState(
  unit: string,
  machine: string,
  overrides: Partial<UnitStateRecord> = {},
): UnitStateRecord {
  return {
    unit,
    machine,
    hash: 'h',
    loadState: 'loaded',
    activeState: 'active',
    subState: 'running',
    launched: true,
    updatedAt: 1_700_000_000_000,
    ...overrides,
  };
}
