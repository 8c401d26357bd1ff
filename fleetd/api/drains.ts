import { systemClock } from '../../lib/clock.js';
import { validateMachineId } from '../../registry/codec.js';
import type { DrainRecord } from '../../registry/model.js';
import type { ApiContext } from './context.js';
import { ApiError } from './errors.js';
import { decodeError, jsonType, parseJsonBody, readFields } from './json.js';
import type { ApiRequest } from './request.js';
import { emptyResponse, jsonResponse, type ApiResponse } from './response.js';

/**
 * Machine drains (fleet-ts extension; `fleetctl drain` / `undrain`), one resource per machine:
 *
 * | method | path                               | what                                            |
 * |--------|------------------------------------|-------------------------------------------------|
 * | GET    | `/fleet/v1/machines/<id>/drain`    | the drain and the engine's progress (200)       |
 * | PUT    | `/fleet/v1/machines/<id>/drain`    | marks the machine draining (200, the drain)      |
 * | DELETE | `/fleet/v1/machines/<id>/drain`    | undrain (204; 404 when it was not draining)      |
 *
 * PUT takes `{"maxParallel": n, "force": bool}` (both optional: 1 and false) and needs a live
 * machine. Marking again changes the options and keeps the progress. The leading engine does the
 * moving (engine/drain-plan.ts); this route only sets and clears the mark.
 */

/** `ready`, `draining` or `drained`: a machine's scheduling state. */
export type MachineScheduling = 'ready' | 'draining' | 'drained';

/** The scheduling state a drain record (or its absence) means. */
export function schedulingState(drain: DrainRecord | undefined): MachineScheduling {
  if (drain === undefined) return 'ready';
  return drain.progress?.state === 'drained' ? 'drained' : 'draining';
}

/** The largest `maxParallel` accepted (a bound against typos like 1000000). */
export const MAX_DRAIN_PARALLEL = 1000;

function checkMachineId(machine: string): void {
  const bad = validateMachineId(machine);
  if (bad !== undefined) throw new ApiError(400, bad);
}

/** The drain entity: keys as the API shows them (empty lists omitted, as everywhere). */
export function drainEntity(machine: string, drain: DrainRecord | undefined): object {
  const p = drain?.progress;
  return {
    machineID: machine,
    state: schedulingState(drain),
    maxParallel: drain?.mark.maxParallel,
    force: drain?.mark.force,
    requestedAt: drain === undefined ? undefined : new Date(drain.mark.requestedAt).toISOString(),
    moving: Object.entries(p?.moving ?? {}).map(([unit, phase]) => ({ unit, phase })),
    moved: p?.moved,
    stuck: p?.stuck,
    forced: p?.forced,
    failed: p?.failed,
  };
}

/** `GET /machines/<id>/drain`. A machine that is not draining answers `{"state":"ready"}`. */
export async function getDrain(ctx: ApiContext, machine: string): Promise<ApiResponse> {
  checkMachineId(machine);
  return jsonResponse(200, drainEntity(machine, await ctx.registry.getDrain(machine)));
}

function decodeOptions(json: unknown): { maxParallel: number; force: boolean } {
  const f = readFields(json ?? {}, '', ['maxParallel', 'force'] as const);
  let maxParallel = 1;
  if (f.maxParallel !== undefined && f.maxParallel !== null) {
    const v = f.maxParallel;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_DRAIN_PARALLEL) {
      throw decodeError(
        `field "maxParallel" must be a whole number from 1 to ${MAX_DRAIN_PARALLEL}, got ${typeof v === 'number' ? String(v) : jsonType(v)}`,
      );
    }
    maxParallel = v;
  }
  let force = false;
  if (f.force !== undefined && f.force !== null) {
    if (typeof f.force !== 'boolean') {
      throw decodeError(`field "force" must be a boolean, got ${jsonType(f.force)}`);
    }
    force = f.force;
  }
  return { maxParallel, force };
}

/** `PUT /machines/<id>/drain`: marks a live machine draining. */
export async function putDrain(ctx: ApiContext, req: ApiRequest, machine: string): Promise<ApiResponse> {
  checkMachineId(machine);
  const body = await req.body();
  const options = decodeOptions(body.length === 0 ? {} : parseJsonBody(body));
  const live = await ctx.registry.listMachines();
  if (!live.some((m) => m.id === machine)) throw new ApiError(404, `no live machine ${machine}`);
  const existing = await ctx.registry.getDrain(machine);
  await ctx.registry.setDrain({
    machine,
    ...options,
    requestedAt: existing?.mark.requestedAt ?? (ctx.clock ?? systemClock).now(),
  });
  ctx.logger.info('machine drain requested', { machine, ...options });
  const drain = await ctx.registry.getDrain(machine);
  return jsonResponse(200, drainEntity(machine, drain));
}

/** `DELETE /machines/<id>/drain`: undrain. Units that moved away stay where they are. */
export async function deleteDrain(ctx: ApiContext, machine: string): Promise<ApiResponse> {
  checkMachineId(machine);
  if (!(await ctx.registry.clearDrain(machine)))
    throw new ApiError(404, `machine ${machine} is not draining`);
  ctx.logger.info('machine undrained', { machine });
  return emptyResponse(204);
}
