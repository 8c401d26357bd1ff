/* eslint-disable max-lines -- units, desired states and the incremental unit list share one paged read and its revision bookkeeping. */
/**
 * The unit store on etcd (UnitStore, GlobalUnitStore): every write is one transaction, retried
 * when it lost a compare-and-swap race, and every read one request at one revision (two for
 * global units).
 */

import { Range, type IKeyValue, type IRangeRequest, type IRangeResponse, type IRequestOp } from 'etcd3';
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
import { compare, deletedAt, keyOf, ops, rangeAt, single, type EtcdConnection } from './etcd-connection.js';
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
    // A malformed record under the name is replaced like a different unit (its hash is unknown).
    const existingHash = conn.corrupt.decode(kv, decodeUnit)?.hash ?? '';
    if (existingHash === unit.hash) return { kind: 'unchanged' };
    if (options.replace !== true) return { kind: 'conflict', existingHash };
    const replaced = await conn.txn('submitUnit', {
      compare: [compare.modified(key, kv.mod_revision)],
      success: writes,
    });
    if (replaced.succeeded) return { kind: 'replaced', previousHash: existingHash };
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
  const unit = conn.corrupt.decode(unitKv, decodeUnit);
  const desiredState = conn.corrupt.decode(desiredKv, decodeDesired);
  return unit === undefined || desiredState === undefined ? undefined : { unit, desiredState };
}

/**
 * The most keys one range answer carries. An answer must stay under gRPC's 4 MiB message limit:
 * 10,000 unit records are about 8 MB, so one range over them all would fail.
 */
export const PAGE_KEYS = 1000;
/** The same for keys-only reads: unit names are at most 256 bytes, 10,000 of them about 3 MB. */
const KEY_PAGE_KEYS = 10_000;

/** One decoded value and the revision it was written at. */
interface Entry<T> {
  readonly modRevision: string;
  readonly value: T;
}

/** The unit records and desired states as of one revision, by unit name. */
interface UnitsSnapshot {
  readonly revision: string;
  readonly units: ReadonlyMap<string, Entry<UnitRecord>>;
  readonly desired: ReadonlyMap<string, Entry<DesiredState>>;
}

/**
 * What `listUnits` last read, so the next read asks etcd only for what changed since (see
 * `listUnits`). One per registry; it holds decoded records, which are immutable.
 */
export class UnitListCache {
  snapshot: UnitsSnapshot | undefined;
}

function rangeOp(prefix: string, extra: Partial<IRangeRequest>): IRequestOp {
  return { request_range: { ...ops.getPrefix(prefix).request_range, ...extra } };
}

/** True when etcd refused a read at a revision it has compacted away. */
function isCompacted(err: unknown): boolean {
  const cause: unknown = err instanceof Error ? err.cause : undefined;
  const text = [err, cause].map((e) => (e instanceof Error ? e.message : '')).join(' ');
  return /compacted/i.test(text);
}

/**
 * The rest of a paged range whose first page is `first`: further pages at `revision`, each
 * starting after the last key seen, with the same filters.
 */
async function restOfRange(
  conn: EtcdConnection,
  operation: string,
  prefix: string,
  first: IRangeResponse,
  revision: string,
  extra: Partial<IRangeRequest>,
  pageKeys = PAGE_KEYS,
): Promise<IKeyValue[]> {
  const kvs = [...first.kvs];
  // A short page is the last: with a modification-revision filter etcd sets `more` whenever the
  // unfiltered range holds more keys than it returned.
  const full = (page: IRangeResponse): boolean => page.more && page.kvs.length >= pageKeys;
  let more = full(first);
  while (more) {
    const last = kvs.at(-1);
    if (last === undefined) break;
    const page = await conn.request(operation, (options) =>
      conn.client.kv.range(
        {
          key: Buffer.concat([last.key, Buffer.from([0])]),
          range_end: Range.prefix(prefix).end,
          limit: pageKeys,
          revision,
          ...extra,
        },
        options,
      ),
    );
    kvs.push(...page.kvs);
    more = full(page);
  }
  return kvs;
}

/** How often a paged read starts over when etcd compacted its revision away meanwhile. */
const COMPACTED_RETRIES = 3;

/**
 * Every key-value under `prefix`, read at one revision in pages of `pageKeys`, so that no answer
 * nears gRPC's 4 MiB message limit however many keys there are (one range over 25,000
 * placements would exceed it). A small prefix is one request, as a plain range is.
 */
export async function readPrefix(
  conn: EtcdConnection,
  operation: string,
  prefix: string,
  pageKeys = PAGE_KEYS,
): Promise<IKeyValue[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await pagedRange(conn, operation, prefix, pageKeys);
    } catch (err) {
      // A later page at a revision compacted meanwhile: read everything afresh.
      if (!isCompacted(err) || attempt >= COMPACTED_RETRIES) throw err;
    }
  }
}

/**
 * Every key under `prefix` in pages of `pageKeys`, with `extra` filters, at `revision` (by
 * default the revision etcd answers the first page at, so that all pages agree).
 */
async function pagedRange(
  conn: EtcdConnection,
  operation: string,
  prefix: string,
  pageKeys: number,
  extra: Partial<IRangeRequest> = {},
  revision?: string,
): Promise<IKeyValue[]> {
  const first = await conn.request(operation, (options) =>
    conn.client.kv.range(
      {
        key: Buffer.from(prefix),
        range_end: Range.prefix(prefix).end,
        limit: pageKeys,
        ...(revision === undefined ? {} : { revision }),
        ...extra,
      },
      options,
    ),
  );
  return restOfRange(conn, operation, prefix, first, revision ?? first.header.revision, extra, pageKeys);
}

/** Every key under `prefix` at `revision`, keys only, paged. */
async function keysAt(
  conn: EtcdConnection,
  operation: string,
  prefix: string,
  revision: string,
): Promise<Set<string>> {
  const kvs = await pagedRange(conn, operation, prefix, KEY_PAGE_KEYS, { keys_only: true }, revision);
  return new Set(kvs.map(keyOf));
}

/**
 * Reads one prefix as of the transaction's revision, on top of `base` (what was read before):
 * the first page came in the transaction (only keys modified after `base` when there is one);
 * more pages follow at the same revision. Keys gone since `base` are found by comparing the
 * count etcd gave (`count`) with the merged map, and then by a keys-only read.
 */
async function mergePrefix<T>(
  conn: EtcdConnection,
  prefix: string,
  first: IRangeResponse,
  revision: string,
  base: UnitsSnapshot | undefined,
  baseMap: ReadonlyMap<string, Entry<T>> | undefined,
  count: number | undefined,
  decode: (key: string, text: string) => T,
): Promise<Map<string, Entry<T>>> {
  const extra: Partial<IRangeRequest> =
    base === undefined ? {} : { min_mod_revision: String(BigInt(base.revision) + 1n) };
  const kvs = await restOfRange(conn, 'listUnits', prefix, first, revision, extra);
  const merged = new Map(baseMap ?? []);
  for (const kv of kvs) {
    const name = keyOf(kv).slice(prefix.length);
    const value = conn.corrupt.decode(kv, decode);
    if (value === undefined) merged.delete(name);
    else merged.set(name, { modRevision: kv.mod_revision, value });
  }
  if (count !== undefined && merged.size !== count) {
    const present = await keysAt(conn, 'listUnits', prefix, revision);
    for (const name of [...merged.keys()]) if (!present.has(`${prefix}${name}`)) merged.delete(name);
  }
  return merged;
}

async function readSnapshot(
  conn: EtcdConnection,
  keys: KeyLayout,
  base: UnitsSnapshot | undefined,
): Promise<UnitsSnapshot> {
  const changed: Partial<IRangeRequest> =
    base === undefined ? {} : { min_mod_revision: String(BigInt(base.revision) + 1n) };
  // One transaction, so one revision: the first page of each prefix (what changed since `base`
  // when there is one) and, on top of a base, how many keys each prefix holds.
  const reads = [
    rangeOp(keys.units, { limit: PAGE_KEYS, ...changed }),
    rangeOp(keys.desiredAll, { limit: PAGE_KEYS, ...changed }),
    ...(base === undefined
      ? []
      : [rangeOp(keys.units, { count_only: true }), rangeOp(keys.desiredAll, { count_only: true })]),
  ];
  const res = await conn.txn('listUnits', { success: reads });
  const revision = res.header.revision;
  const range = (i: number): IRangeResponse => {
    const r = res.responses[i]?.response_range;
    if (r === undefined) throw new FleetError('INTERNAL', `etcd transaction response ${i} is not a range`);
    return r;
  };
  const count = (i: number): number | undefined => (base === undefined ? undefined : Number(range(i).count));
  const [units, desired] = await Promise.all([
    mergePrefix(conn, keys.units, range(0), revision, base, base?.units, count(2), decodeUnit),
    mergePrefix(conn, keys.desiredAll, range(1), revision, base, base?.desired, count(3), decodeDesired),
  ]);
  return { revision, units, desired };
}

/**
 * Every unit with its desired state, read at one revision.
 *
 * The first read takes everything, in pages of PAGE_KEYS; later ones ask etcd only for the keys
 * modified since the last read (etcd filters by modification revision) plus the key counts,
 * which reveal deletions, all in one transaction. The engine re-reads the units on every change,
 * so this keeps each of its rounds at one small request instead of a full copy of every unit.
 */
export async function listUnits(
  conn: EtcdConnection,
  keys: KeyLayout,
  cache: UnitListCache = new UnitListCache(),
): Promise<StoredUnit[]> {
  const base = cache.snapshot;
  let snapshot: UnitsSnapshot;
  try {
    snapshot = await readSnapshot(conn, keys, base);
  } catch (err) {
    // A later page at a revision compacted meanwhile: read everything afresh.
    if (!isCompacted(err)) throw err;
    snapshot = await readSnapshot(conn, keys, undefined);
  }
  const latest = cache.snapshot;
  if (latest === undefined || BigInt(latest.revision) <= BigInt(snapshot.revision)) cache.snapshot = snapshot;
  const result: StoredUnit[] = [];
  for (const [name, unit] of snapshot.units) {
    const desired = snapshot.desired.get(name);
    if (desired === undefined) continue;
    result.push({ unit: unit.value, desiredState: desired.value });
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
    const unit = conn.corrupt.decode(unitKv, decodeUnit);
    // A malformed unit record is no unit: there is nothing to set a desired state on.
    if (unit === undefined) return false;
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
    const placement = conn.corrupt.decode(kv, decodePlacement);
    guard = compare.modified(placementKey, kv.mod_revision);
    // A malformed placement names no machine: it goes, and the engine cleans the schedule up.
    scheduled = [
      ops.delete(placementKey),
      ...(placement === undefined ? [] : [ops.delete(keys.schedule(placement.machine, name))]),
    ];
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
      const unit = conn.corrupt.decode(unitKv, decodeUnit);
      const entry = conn.corrupt.decode(entryKv, decodeGlobal);
      if (unit !== undefined && entry !== undefined) result.push({ unit, desiredState: entry.desiredState });
    });
  }
  return result.sort(byKey((s) => s.unit.name));
}
