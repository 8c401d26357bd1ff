import { isIP } from 'node:net';
import { FleetError } from '../lib/errors.js';
import type { FleetOptions, MetadataRequirement } from '../unit/fleet-options.js';
import { isDesiredState, type DesiredState } from '../unit/states.js';
import { validateUnitName } from '../unit/unit-name.js';
import type { MachineRecord, Placement, UnitOptionData, UnitRecord, UnitStateRecord } from './model.js';

/**
 * Stored values are versioned JSON: `{"v":1,...}`. Decoding checks every field, so a value
 * written by a different program or a future version fails loudly with REGISTRY_CORRUPT (naming
 * the key) instead of flowing through the cluster half-understood. Names are checked too: a unit
 * name must be valid and match its key, a machine ID must be valid (see `validateMachineId`) and
 * match its key, a public IP must be an IP address (or empty): these values reach systemd, the
 * file system and fleetctl's ssh command line. Readers skip such a record (etcd-corrupt.ts).
 */
export const CODEC_VERSION = 1;

/** The longest machine ID accepted (systemd's are 32 hex digits; tests and fleet used others). */
export const MAX_MACHINE_ID_LENGTH = 128;
const MACHINE_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

/**
 * Why `id` is not a valid machine ID, or undefined when it is: 1 to 128 characters, letters,
 * digits and `._:-`, starting with a letter or digit (systemd's machine IDs are 32 hex digits).
 * A machine ID is part of etcd keys and of what fleetctl prints and passes to ssh.
 */
export function validateMachineId(id: string): string | undefined {
  if (id.length === 0) return 'machine ID is empty';
  if (id.length > MAX_MACHINE_ID_LENGTH)
    return `machine ID is longer than ${MAX_MACHINE_ID_LENGTH} characters`;
  if (!MACHINE_ID.test(id))
    return `machine ID ${JSON.stringify(id)} has characters other than letters, digits and ._:- (or starts with one of ._:-)`;
  return undefined;
}

/** Why `ip` is not a public IP a machine may announce ("" is allowed: none detected). */
export function validatePublicIp(ip: string): string | undefined {
  return ip === '' || isIP(ip) !== 0 ? undefined : `public IP ${JSON.stringify(ip)} is not an IP address`;
}

/** A decoded JSON object (the helpers below are shared with codec-drains.ts). */
export type Json = Record<string, unknown>;

export function corrupt(key: string, why: string): FleetError {
  return new FleetError('REGISTRY_CORRUPT', `stored value at ${key} is invalid: ${why}`);
}

export function object(key: string, text: string): Json {
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

export function str(key: string, o: Json, field: string): string {
  const v = o[field];
  if (typeof v !== 'string') throw corrupt(key, `field ${field} is not a string`);
  return v;
}

export function bool(key: string, o: Json, field: string): boolean {
  const v = o[field];
  if (typeof v !== 'boolean') throw corrupt(key, `field ${field} is not a boolean`);
  return v;
}

export function num(key: string, o: Json, field: string): number {
  const v = o[field];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw corrupt(key, `field ${field} is not a number`);
  return v;
}

export function strings(key: string, v: unknown, field: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
    throw corrupt(key, `field ${field} is not a string list`);
  return v;
}

/** A unit name field: a valid unit name (unit-name.ts). */
function unitName(key: string, o: Json, field: string): string {
  const v = str(key, o, field);
  const bad = validateUnitName(v);
  if (bad !== undefined) throw corrupt(key, `field ${field}: ${bad}`);
  return v;
}

/** A machine ID field: a valid machine ID. */
function machineId(key: string, o: Json, field: string): string {
  const v = str(key, o, field);
  const bad = validateMachineId(v);
  if (bad !== undefined) throw corrupt(key, `field ${field}: ${bad}`);
  return v;
}

/** Checks that the key ends in `/<tail>`: a record stored under another record's key is corrupt. */
function keyEndsWith(key: string, tail: string, what: string): void {
  if (!key.endsWith(`/${tail}`))
    throw corrupt(key, `its ${what} ${JSON.stringify(tail)} does not match the key`);
}

function desired(key: string, o: Json, field: string): DesiredState {
  const v = o[field];
  if (!isDesiredState(v)) throw corrupt(key, `field ${field} is not a desired state`);
  return v;
}

export function stringMap(key: string, v: unknown, field: string): Record<string, string> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw corrupt(key, `field ${field} is not an object`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') throw corrupt(key, `field ${field}.${k} is not a string`);
    out[k] = val;
  }
  return out;
}

export function encode(value: Json): string {
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
  const name = unitName(key, o, 'name');
  keyEndsWith(key, name, 'unit name');
  return {
    name,
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
  const unit = unitName(key, o, 'unit');
  keyEndsWith(key, unit, 'unit name');
  return {
    unit,
    machine: machineId(key, o, 'machine'),
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
  const id = machineId(key, o, 'id');
  keyEndsWith(key, id, 'machine ID');
  const publicIp = str(key, o, 'publicIp');
  const badIp = validatePublicIp(publicIp);
  if (badIp !== undefined) throw corrupt(key, badIp);
  return {
    id,
    publicIp,
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

/** One metadata value set through the API, with the machine and key its etcd key names. */
export interface MetadataEntry {
  readonly machine: string;
  readonly key: string;
  readonly value: string;
}

/**
 * Decodes `metadata/<machine>/<key>`; `tail` is the etcd key after `metadata/`. The machine ID
 * and the metadata key must be valid (`validateMachineId`, `validateMetadataKey`), the value
 * one line (`validateMetadataValue`).
 */
export function decodeMetadataEntry(tail: string, key: string, text: string): MetadataEntry {
  const slash = tail.indexOf('/');
  if (slash <= 0) throw corrupt(key, 'the key names no machine');
  const machine = tail.slice(0, slash);
  const badMachine = validateMachineId(machine);
  if (badMachine !== undefined) throw corrupt(key, badMachine);
  const name = tail.slice(slash + 1);
  const badKey = validateMetadataKey(name);
  if (badKey !== undefined) throw corrupt(key, badKey);
  const value = decodeMetadataValue(key, text);
  const badValue = validateMetadataValue(value);
  if (badValue !== undefined) throw corrupt(key, badValue);
  return { machine, key: name, value };
}

const METADATA_KEY = /^[A-Za-z0-9_.-]+$/;
/** The longest metadata key and value accepted through the API, in characters. */
export const MAX_METADATA_KEY_LENGTH = 253;
export const MAX_METADATA_VALUE_LENGTH = 1024;

/**
 * Why `key` is not a valid metadata key, or undefined: 1 to 253 letters, digits and `_.-`
 * (fleet's `metadataPathRegex` allowed the same characters).
 */
export function validateMetadataKey(key: string): string | undefined {
  if (key.length === 0) return 'metadata key is empty';
  if (key.length > MAX_METADATA_KEY_LENGTH)
    return `metadata key is longer than ${MAX_METADATA_KEY_LENGTH} characters`;
  if (!METADATA_KEY.test(key))
    return `metadata key ${JSON.stringify(key)} has characters other than letters, digits and _.-`;
  return undefined;
}

/**
 * Why `value` is not a valid metadata value, or undefined: at most 1024 characters, without
 * control characters (a newline or an escape sequence would garble what fleetctl prints).
 */
export function validateMetadataValue(value: string): string | undefined {
  if (value.length > MAX_METADATA_VALUE_LENGTH)
    return `metadata value is longer than ${MAX_METADATA_VALUE_LENGTH} characters`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(value))
    return `metadata value ${JSON.stringify(value)} has a control character`;
  return undefined;
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
  const unit = unitName(key, o, 'unit');
  const machine = machineId(key, o, 'machine');
  keyEndsWith(key, `${unit}/${machine}`, 'unit name and machine ID');
  return {
    unit,
    machine,
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
