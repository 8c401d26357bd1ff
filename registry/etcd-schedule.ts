import type { ICompare, IRequestOp } from 'etcd3';
import { FleetError } from '../lib/errors.js';
import { decodePlacement, encodePlacement } from './codec.js';
import { MAX_TXN_OPS, compare, ops, rangeAt, single, type EtcdConnection } from './etcd-connection.js';
import type { EtcdLeadership } from './etcd-election.js';
import type { KeyLayout } from './keys.js';
import type { Placement, ScheduleWrite } from './model.js';

/** How often one chunk is re-planned when placements moved under it before giving up. */
const MAX_ATTEMPTS = 5;

/** A unit's placement as last read: its value and the revision it was written at, or absent. */
interface Known {
  readonly placement: Placement | undefined;
  readonly modRevision: string | undefined;
}

const ABSENT: Known = { placement: undefined, modRevision: undefined };

interface UnitPlan {
  readonly ops: IRequestOp[];
  /** The placement as the plan assumed it: unchanged since it was read, or still absent. */
  readonly compare: ICompare;
}

function unitOf(write: ScheduleWrite): string {
  return write.kind === 'put' ? write.placement.unit : write.unit;
}

/**
 * The net effect of one unit's writes, in order, on its schedule keys and placement, starting
 * from the placement as known. A put moves the unit (removing the schedule key of the machine it
 * was on); a delete unschedules it only from the machine its placement names, but the schedule
 * key it names is deleted anyway, which also heals a stray key.
 */
function planUnit(keys: KeyLayout, unit: string, writes: readonly ScheduleWrite[], known: Known): UnitPlan {
  let current = known.placement;
  let placementChanged = false;
  // machine -> the placement to store there, or null to delete its schedule key
  const schedule = new Map<string, Placement | null>();
  for (const write of writes) {
    if (write.kind === 'put') {
      if (current !== undefined && current.machine !== write.placement.machine)
        schedule.set(current.machine, null);
      schedule.set(write.placement.machine, write.placement);
      current = write.placement;
      placementChanged = true;
    } else {
      if (current?.machine === write.machine) {
        current = undefined;
        placementChanged = true;
      }
      schedule.set(write.machine, null);
    }
  }
  const result = [...schedule].map(([machine, placement]) =>
    placement === null
      ? ops.delete(keys.schedule(machine, unit))
      : ops.put(keys.schedule(machine, unit), encodePlacement(placement)),
  );
  if (placementChanged) {
    result.push(
      current === undefined
        ? ops.delete(keys.placement(unit))
        : ops.put(keys.placement(unit), encodePlacement(current)),
    );
  }
  const placementKey = keys.placement(unit);
  return {
    ops: result,
    compare:
      known.modRevision === undefined
        ? compare.absent(placementKey)
        : compare.modified(placementKey, known.modRevision),
  };
}

/**
 * Splits the units into transactions within etcd's limit of 128 operations per branch and per
 * comparison list (two comparisons are the leadership fence, one more per unit).
 */
function chunks(
  byUnit: ReadonlyMap<string, readonly ScheduleWrite[]>,
): Map<string, readonly ScheduleWrite[]>[] {
  const result: Map<string, readonly ScheduleWrite[]>[] = [];
  let chunk = new Map<string, readonly ScheduleWrite[]>();
  let opCount = 0;
  for (const [unit, writes] of byUnit) {
    // At most: one key per machine named, the machine the unit was on, and the placement.
    const bound = new Set(writes.map((w) => (w.kind === 'put' ? w.placement.machine : w.machine))).size + 2;
    if (chunk.size > 0 && (opCount + bound > MAX_TXN_OPS || chunk.size + 3 > MAX_TXN_OPS)) {
      result.push(chunk);
      chunk = new Map();
      opCount = 0;
    }
    chunk.set(unit, writes);
    opCount += bound;
  }
  if (chunk.size > 0) result.push(chunk);
  return result;
}

/**
 * Applies schedule writes in one transaction per chunk (one in practice), each fenced by the
 * leadership and by the placements it assumed. The first attempt assumes the units are not
 * placed yet, which is true for new placements: those cost one request. Otherwise etcd answers
 * with the current placements and the chunk is re-planned on them (a second request).
 *
 * Returns false, writing nothing more, as soon as the leader key is no longer this leadership's.
 */
export async function applySchedule(
  conn: EtcdConnection,
  keys: KeyLayout,
  writes: readonly ScheduleWrite[],
  leadership: EtcdLeadership,
): Promise<boolean> {
  if (leadership.lost) return false;
  if (writes.length === 0) {
    // Nothing to write, but the answer must still be etcd's: a leader deposed unawares gets false.
    const res = await conn.txn('applySchedule', { compare: leadership.guard() });
    if (!res.succeeded) leadership.markLost('the leader key changed (seen by a schedule write)');
    return res.succeeded;
  }
  const byUnit = new Map<string, ScheduleWrite[]>();
  for (const write of writes) {
    const unit = unitOf(write);
    const list = byUnit.get(unit);
    if (list === undefined) byUnit.set(unit, [write]);
    else list.push(write);
  }
  for (const chunk of chunks(byUnit)) {
    const units = [...chunk.keys()];
    const known = new Map<string, Known>();
    for (let attempt = 1; ; attempt++) {
      const plans = [...chunk].map(([unit, unitWrites]) =>
        planUnit(keys, unit, unitWrites, known.get(unit) ?? ABSENT),
      );
      const res = await conn.txn('applySchedule', {
        compare: [...leadership.guard(), ...plans.map((p) => p.compare)],
        success: plans.flatMap((p) => p.ops),
        failure: [ops.get(keys.leader), ...units.map((u) => ops.get(keys.placement(u)))],
      });
      if (res.succeeded) break;
      if (!leadership.holds(single(rangeAt(res, 0)))) {
        leadership.markLost('the leader key changed (seen by a schedule write)');
        return false;
      }
      if (attempt >= MAX_ATTEMPTS) {
        throw new FleetError(
          'REGISTRY_UNAVAILABLE',
          `etcd applySchedule: placements of ${units.length} units kept changing over ${MAX_ATTEMPTS} attempts`,
          { retryable: true },
        );
      }
      units.forEach((unit, i) => {
        const kv = single(rangeAt(res, i + 1));
        // A malformed placement counts as none, still fenced by its revision: a put replaces it.
        known.set(
          unit,
          kv === undefined
            ? ABSENT
            : { placement: conn.corrupt.decode(kv, decodePlacement), modRevision: kv.mod_revision },
        );
      });
    }
  }
  return true;
}
