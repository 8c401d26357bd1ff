import { FleetError } from '../lib/errors.js';
import type { FleetOptions, MetadataRequirement } from '../unit/fleet-options.js';
import { isDesiredState, type DesiredState } from '../unit/states.js';
import type { MachineRecord, Placement, UnitOptionData, UnitRecord, UnitStateRecord } from './model.js';

/**
 * Stored values are versioned JSON: `{"v":1,...}`. Decoding checks every field, so a value
 * written by a different program or a future version fails loudly with REGISTRY_CORRUPT (naming
 * the key) instead of flowing through the cluster half-understood.
 */
export const CODEC_VERSION = 1;

type Json = Record<string, unknown>;

function corrupt(key: string, why: string): FleetError {
  return new FleetError('REGISTRY_CORRUPT', `stored value at ${key} is invalid: ${why}`);
}

function object(key: string, text: string): Json {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw corrupt(key, `not JSON (${(err as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw corrupt(key, 'not an object');
  const o = parsed as Json;
  if (o.v !== CODEC_VERSION) throw corrupt(key, `unsupported version ${JSON.stringify(o.v)}`);
  return o;
}

function str(key: string, o: Json, field: string): string {
  const v = o[field];
  if (typeof v !== 'string') throw corrupt(key, `field ${field} is not a string`);
  return v;
}

function bool(key: string, o: Json, field: string): boolean {
  const v = o[field];
  if (typeof v !== 'boolean') throw corrupt(key, `field ${field} is not a boolean`);
  return v;
}

function num(key: string, o: Json, field: string): number {
  const v = o[field];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw corrupt(key, `field ${field} is not a number`);
  return v;
}

function strings(key: string, v: unknown, field: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
    throw corrupt(key, `field ${field} is not a string list`);
  return v;
}

function desired(key: string, o: Json, field: string): DesiredState {
  const v = o[field];
  if (!isDesiredState(v)) throw corrupt(key, `field ${field} is not a desired state`);
  return v;
}

function stringMap(key: string, v: unknown, field: string): Record<string, string> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw corrupt(key, `field ${field} is not an object`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') throw corrupt(key, `field ${field}.${k} is not a string`);
    out[k] = val;
  }
  return out;
}

function encode(value: Json): string {
  return JSON.stringify({ v: CODEC_VERSION, ...value });
}

// Units ---------------------------------------------------------------------------------------

/** A unit's contents; `origin` is written only when the unit has one (older readers ignore it). */
export function encodeUnit(unit: UnitRecord): string {
  return encode({
    name: unit.name,
    hash: unit.hash,
    options: unit.options,
    fleet: unit.fleet,
    ...(unit.origin === undefined ? {} : { origin: unit.origin }),
  });
}

function decodeFleet(key: string, v: unknown): FleetOptions {
  if (typeof v !== 'object' || v === null) throw corrupt(key, 'field fleet is not an object');
  const o = v as Json;
  const metadata = o.machineMetadata;
  if (!Array.isArray(metadata)) throw corrupt(key, 'field fleet.machineMetadata is not a list');
  const machineMetadata: MetadataRequirement[] = metadata.map((m: unknown) => {
    if (typeof m !== 'object' || m === null) throw corrupt(key, 'a metadata requirement is not an object');
    const r = m as Json;
    return { key: str(key, r, 'key'), values: strings(key, r.values, 'fleet.machineMetadata.values') };
  });
  const machineId = o.machineId;
  if (machineId !== undefined && typeof machineId !== 'string')
    throw corrupt(key, 'field fleet.machineId is not a string');
  return {
    ...(machineId === undefined ? {} : { machineId }),
    machineOf: strings(key, o.machineOf, 'fleet.machineOf'),
    machineMetadata,
    conflicts: strings(key, o.conflicts, 'fleet.conflicts'),
    global: bool(key, o, 'global'),
    replaces: strings(key, o.replaces, 'fleet.replaces'),
  };
}

export function decodeUnit(key: string, text: string): UnitRecord {
  const o = object(key, text);
  const options = o.options;
  if (!Array.isArray(options)) throw corrupt(key, 'field options is not a list');
  return {
    name: str(key, o, 'name'),
    hash: str(key, o, 'hash'),
    options: options.map((x: unknown): UnitOptionData => {
      if (typeof x !== 'object' || x === null) throw corrupt(key, 'an option is not an object');
      const r = x as Json;
      return { section: str(key, r, 'section'), name: str(key, r, 'name'), value: str(key, r, 'value') };
    }),
    fleet: decodeFleet(key, o.fleet),
    ...(o.origin === undefined ? {} : { origin: str(key, o, 'origin') }),
  };
}

export function encodeDesired(state: DesiredState): string {
  return encode({ state });
}

export function decodeDesired(key: string, text: string): DesiredState {
  return desired(key, object(key, text), 'state');
}

/** A global unit's entry: what agents need to know without reading every unit. */
export interface GlobalEntry {
  readonly hash: string;
  readonly desiredState: DesiredState;
}

export function encodeGlobal(entry: GlobalEntry): string {
  return encode({ hash: entry.hash, desiredState: entry.desiredState });
}

export function decodeGlobal(key: string, text: string): GlobalEntry {
  const o = object(key, text);
  return { hash: str(key, o, 'hash'), desiredState: desired(key, o, 'desiredState') };
}

// Schedule ------------------------------------------------------------------------------------

export function encodePlacement(p: Placement): string {
  return encode({ unit: p.unit, machine: p.machine, hash: p.hash, desiredState: p.desiredState });
}

export function decodePlacement(key: string, text: string): Placement {
  const o = object(key, text);
  return {
    unit: str(key, o, 'unit'),
    machine: str(key, o, 'machine'),
    hash: str(key, o, 'hash'),
    desiredState: desired(key, o, 'desiredState'),
  };
}

// Machines and states -------------------------------------------------------------------------

export function encodeMachine(m: MachineRecord): string {
  return encode({
    id: m.id,
    publicIp: m.publicIp,
    metadata: m.metadata,
    version: m.version,
    ...(m.bootId === undefined ? {} : { bootId: m.bootId }),
  });
}

export function decodeMachine(key: string, text: string): MachineRecord {
  const o = object(key, text);
  return {
    id: str(key, o, 'id'),
    publicIp: str(key, o, 'publicIp'),
    metadata: stringMap(key, o.metadata, 'metadata'),
    version: str(key, o, 'version'),
    ...(o.bootId === undefined ? {} : { bootId: str(key, o, 'bootId') }),
  };
}

export function encodeMetadataValue(value: string): string {
  return encode({ value });
}

export function decodeMetadataValue(key: string, text: string): string {
  return str(key, object(key, text), 'value');
}

export function encodeUnitState(s: UnitStateRecord): string {
  return encode({
    unit: s.unit,
    machine: s.machine,
    hash: s.hash,
    loadState: s.loadState,
    activeState: s.activeState,
    subState: s.subState,
    launched: s.launched,
    updatedAt: s.updatedAt,
  });
}

export function decodeUnitState(key: string, text: string): UnitStateRecord {
  const o = object(key, text);
  return {
    unit: str(key, o, 'unit'),
    machine: str(key, o, 'machine'),
    hash: str(key, o, 'hash'),
    loadState: str(key, o, 'loadState'),
    activeState: str(key, o, 'activeState'),
    subState: str(key, o, 'subState'),
    launched: bool(key, o, 'launched'),
    updatedAt: num(key, o, 'updatedAt'),
  };
}

export function encodeReason(reason: string): string {
  return encode({ reason });
}

export function decodeReason(key: string, text: string): string {
  return str(key, object(key, text), 'reason');
}

/**
 * True when a live machine record belongs to an earlier run of the same fleetd on the same
 * machine (same boot and address), which a new run may take over.
 */
export function sameIncarnationHost(existing: MachineRecord, next: MachineRecord): boolean {
  return (
    existing.bootId !== undefined &&
    existing.bootId !== '' &&
    existing.bootId === next.bootId &&
    existing.publicIp === next.publicIp
  );
}

export function encodeLeader(candidate: string): string {
  return encode({ candidate });
}

export function decodeLeader(key: string, text: string): string {
  return str(key, object(key, text), 'candidate');
}

/** Machine records merged with API metadata (API wins; an empty API value removes the key). */
export function mergeMetadata(
  record: MachineRecord,
  apiMetadata: ReadonlyMap<string, string> | undefined,
): MachineRecord {
  if (apiMetadata === undefined || apiMetadata.size === 0) return record;
  const metadata = new Map(Object.entries(record.metadata));
  for (const [k, v] of apiMetadata) {
    // fleet's PATCH remove stores an empty value, which hides a configured key too.
    if (v === '') metadata.delete(k);
    else metadata.set(k, v);
  }
  return { ...record, metadata: Object.fromEntries(metadata) };
}
