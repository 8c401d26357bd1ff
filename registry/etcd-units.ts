/**
 * The unit store on etcd (UnitStore, GlobalUnitStore): every write is one transaction, retried
 * when it lost a compare-and-swap race, and every read one request at one revision (two for
 * global units).
 */

import { FleetError } from '../lib/errors.js';
import type { DesiredState } from '../unit/states.js';
import {
  decodeDesired,
  decodeGlobal,
  decodePlacement,
  decodeUnit,
  encodeDesired,
  encodeGlobal,
  encodeUnit,
} from './codec.js';
import {
  compare,
  deletedAt,
  keyOf,
  ops,
  rangeAt,
  single,
  valueOf,
  type EtcdConnection,
} from './etcd-connection.js';
import type { KeyLayout } from './keys.js';
import type { StoredUnit, SubmitResult, UnitRecord } from './model.js';

/** How often a compare-and-swap that lost a race is retried before giving up (retryable). */
export const MAX_CAS_ATTEMPTS = 5;
/** Units read per transaction by listGlobalUnits (two reads each, within etcd's 128). */
const GLOBAL_READ_CHUNK = 64;

/** The retryable failure of a write that kept losing compare-and-swap races. */
export function raceLost(operation: string, name: string): FleetError {
  return new FleetError(
    'REGISTRY_UNAVAILABLE',
    `etcd ${operation} of ${name}: lost ${MAX_CAS_ATTEMPTS} compare-and-swap races in a row`,
    { retryable: true },
  );
}

/** Sorts by a string key, byte-wise for ASCII (the order fleet lists in). */
export function byKey<T>(key: (t: T) => string): (a: T, b: T) => number {
  return (a, b) => {
    const ka = key(a);
    const kb = key(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  };
}

/**
 * Creates a unit (contents, desired state, global entry) if its name is free; otherwise etcd
 * answers with the stored unit in the same request, which decides unchanged, conflict or a
 * replace guarded by the stored unit's revision. A lost race starts over.
 */
export async function submitUnit(
  conn: EtcdConnection,
  keys: KeyLayout,
  unit: UnitRecord,
  desiredState: DesiredState,
  options: { replace?: boolean } = {},
): Promise<SubmitResult> {
  const key = keys.unit(unit.name);
  const globalKey = keys.global(unit.name);
  const writes = [
    ops.put(key, encodeUnit(unit)),
    ops.put(keys.desired(unit.name), encodeDesired(desiredState)),
    unit.fleet.global
      ? ops.put(globalKey, encodeGlobal({ hash: unit.hash, desiredState }))
      : ops.delete(globalKey),
  ];
  for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
    const created = await conn.txn('submitUnit', {
      compare: [compare.absent(key)],
      success: writes,
      failure: [ops.get(key)],
    });
    if (created.succeeded) return { kind: 'created' };
    const kv = single(rangeAt(created, 0));
    if (kv === undefined) continue;
    const existing = decodeUnit(key, valueOf(kv));
    if (existing.hash === unit.hash) return { kind: 'unchanged' };
    if (options.replace !== true) return { kind: 'conflict', existingHash: existing.hash };
    const replaced = await conn.txn('submitUnit', {
      compare: [compare.modified(key, kv.mod_revision)],
      success: writes,
    });
    if (replaced.succeeded) return { kind: 'replaced', previousHash: existing.hash };
  }
  throw raceLost('submitUnit', unit.name);
}

/** The unit and its desired state, read at one revision. */
export async function getUnit(
  conn: EtcdConnection,
  keys: KeyLayout,
  name: string,
): Promise<StoredUnit | undefined> {
  const [units, desired] = await conn.read('getUnit', [
    ops.get(keys.unit(name)),
    ops.get(keys.desired(name)),
  ]);
  const unitKv = single(units ?? []);
  const desiredKv = single(desired ?? []);
  if (unitKv === undefined || desiredKv === undefined) return undefined;
  return {
    unit: decodeUnit(keyOf(unitKv), valueOf(unitKv)),
    desiredState: decodeDesired(keyOf(desiredKv), valueOf(desiredKv)),
  };
}

/** Every unit with its desired state, read at one revision. */
export async function listUnits(conn: EtcdConnection, keys: KeyLayout): Promise<StoredUnit[]> {
  const [units = [], desired = []] = await conn.read('listUnits', [
    ops.getPrefix(keys.units),
    ops.getPrefix(keys.desiredAll),
  ]);
  const states = new Map(desired.map((kv) => [keys.tail(keyOf(kv), keys.desiredAll), kv]));
  const result: StoredUnit[] = [];
  for (const kv of units) {
    const desiredKv = states.get(keys.tail(keyOf(kv), keys.units));
    if (desiredKv === undefined) continue;
    result.push({
      unit: decodeUnit(keyOf(kv), valueOf(kv)),
      desiredState: decodeDesired(keyOf(desiredKv), valueOf(desiredKv)),
    });
  }
  return result.sort(byKey((s) => s.unit.name));
}

/**
 * Sets the desired state only while the unit exists. A global unit's entry carries the desired
 * state too; it is updated in the same transaction, guarded by the unit's revision.
 */
export async function setDesiredState(
  conn: EtcdConnection,
  keys: KeyLayout,
  name: string,
  state: DesiredState,
): Promise<boolean> {
  const key = keys.unit(name);
  const globalKey = keys.global(name);
  const desired = ops.put(keys.desired(name), encodeDesired(state));
  for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
    // The common case, a plain unit, is one request.
    const plain = await conn.txn('setDesiredState', {
      compare: [compare.present(key), compare.absent(globalKey)],
      success: [desired],
      failure: [ops.get(key), ops.get(globalKey)],
    });
    if (plain.succeeded) return true;
    const unitKv = single(rangeAt(plain, 0));
    if (unitKv === undefined) return false;
    if (single(rangeAt(plain, 1)) === undefined) continue;
    const unit = decodeUnit(key, valueOf(unitKv));
    const global = await conn.txn('setDesiredState', {
      compare: [compare.modified(key, unitKv.mod_revision)],
      success: [desired, ops.put(globalKey, encodeGlobal({ hash: unit.hash, desiredState: state }))],
    });
    if (global.succeeded) return true;
  }
  throw raceLost('setDesiredState', name);
}

/**
 * Deletes everything about a unit in one transaction: contents, desired state, global entry,
 * states, and (guarded by the placement's revision) the placement and the schedule key it names.
 */
export async function destroyUnit(conn: EtcdConnection, keys: KeyLayout, name: string): Promise<boolean> {
  const placementKey = keys.placement(name);
  const deletes = [
    ops.delete(keys.unit(name)),
    ops.delete(keys.desired(name)),
    ops.delete(keys.global(name)),
    ops.delete(keys.reason(name)),
    ops.deletePrefix(keys.unitStates(name)),
  ];
  // First assume the unit is not scheduled (one request); otherwise etcd tells where it is.
  let guard = compare.absent(placementKey);
  let scheduled: typeof deletes = [];
  for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
    const res = await conn.txn('destroyUnit', {
      compare: [guard],
      success: [...deletes, ...scheduled],
      failure: [ops.get(placementKey)],
    });
    if (res.succeeded) return deletedAt(res, 0) > 0;
    const kv = single(rangeAt(res, 0));
    if (kv === undefined) {
      guard = compare.absent(placementKey);
      scheduled = [];
      continue;
    }
    const placement = decodePlacement(placementKey, valueOf(kv));
    guard = compare.modified(placementKey, kv.mod_revision);
    scheduled = [ops.delete(placementKey), ops.delete(keys.schedule(placement.machine, name))];
  }
  throw raceLost('destroyUnit', name);
}

/** Global units: the entries first, then their contents and entries at one revision. */
export async function listGlobalUnits(conn: EtcdConnection, keys: KeyLayout): Promise<StoredUnit[]> {
  const [entries = []] = await conn.read('listGlobalUnits', [ops.getPrefix(keys.globals)]);
  const names = entries.map((kv) => keys.tail(keyOf(kv), keys.globals));
  const result: StoredUnit[] = [];
  for (let i = 0; i < names.length; i += GLOBAL_READ_CHUNK) {
    const chunk = names.slice(i, i + GLOBAL_READ_CHUNK);
    // Contents and entry at one revision, so the desired state belongs to these contents.
    const reads = await conn.read(
      'listGlobalUnits',
      chunk.flatMap((name) => [ops.get(keys.unit(name)), ops.get(keys.global(name))]),
    );
    chunk.forEach((_, j) => {
      const unitKv = single(reads[2 * j] ?? []);
      const entryKv = single(reads[2 * j + 1] ?? []);
      if (unitKv === undefined || entryKv === undefined) return;
      result.push({
        unit: decodeUnit(keyOf(unitKv), valueOf(unitKv)),
        desiredState: decodeGlobal(keyOf(entryKv), valueOf(entryKv)).desiredState,
      });
    });
  }
  return result.sort(byKey((s) => s.unit.name));
}
