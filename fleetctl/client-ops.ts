/**
 * fleet-ts's own API entities as fleetctl reads them (drains; fleet's entities are in client.ts):
 * decoded leniently, like fleet's client, ignoring what it does not know.
 */

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** A unit of a drain that stays (or was stopped by force, or failed where it went), with why. */
export interface ApiDrainUnit {
  readonly unit: string;
  readonly reason: string;
}

/** A machine's drain (fleet-ts: `GET/PUT /machines/<id>/drain`). */
export interface ApiDrain {
  readonly machineID: string;
  /** `ready`, `draining` or `drained`. */
  readonly state: string;
  readonly maxParallel?: number;
  readonly force?: boolean;
  readonly moving: readonly { readonly unit: string; readonly phase: string }[];
  readonly moved: readonly string[];
  readonly stuck: readonly ApiDrainUnit[];
  readonly forced: readonly ApiDrainUnit[];
  readonly failed: readonly ApiDrainUnit[];
}

function drainUnits(v: unknown): ApiDrainUnit[] {
  if (!Array.isArray(v)) return [];
  return v.flatMap((x: unknown) =>
    isRecord(x) && typeof x.unit === 'string' ? [{ unit: x.unit, reason: str(x.reason) ?? '' }] : [],
  );
}

export function toDrain(v: Record<string, unknown>, machine: string): ApiDrain {
  const moving = Array.isArray(v.moving)
    ? v.moving.flatMap((x: unknown) =>
        isRecord(x) && typeof x.unit === 'string' ? [{ unit: x.unit, phase: str(x.phase) ?? '' }] : [],
      )
    : [];
  return {
    machineID: str(v.machineID) ?? machine,
    state: str(v.state) ?? 'ready',
    ...(typeof v.maxParallel === 'number' ? { maxParallel: v.maxParallel } : {}),
    ...(typeof v.force === 'boolean' ? { force: v.force } : {}),
    moving,
    moved: Array.isArray(v.moved) ? v.moved.filter((x: unknown): x is string => typeof x === 'string') : [],
    stuck: drainUnits(v.stuck),
    forced: drainUnits(v.forced),
    failed: drainUnits(v.failed),
  };
}
