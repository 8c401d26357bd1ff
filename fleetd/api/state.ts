import type { ApiContext } from './context.js';
import { unitStateEntity } from './entities.js';
import { ApiError } from './errors.js';
import { pageFromQuery, paginate } from './pagination.js';
import type { ApiRequest } from './request.js';
import { jsonResponse, type ApiResponse } from './response.js';

/**
 * The state resource (docs/fleet-compat.md §8.6): what agents report about the units they run, one record
 * per (unit, machine), sorted by unit name then machine ID.
 */

/** An optional filter parameter: its first value, where an empty value means no filter (fleet). */
function filterParam(query: URLSearchParams, name: string): string | undefined {
  const value = query.get(name);
  return value === null || value === '' ? undefined : value;
}

/** `GET /state[?machineID=&unitName=]`: one page of states, filtered by exact match. */
export async function listStates(ctx: ApiContext, req: ApiRequest): Promise<ApiResponse> {
  const token = pageFromQuery(req.query, ctx.tokenLimit);
  const states = await ctx.registry.listUnitStates({
    machine: filterParam(req.query, 'machineID'),
    unit: filterParam(req.query, 'unitName'),
  });
  const page = paginate(states, token);
  return jsonResponse(200, { nextPageToken: page.nextPageToken, states: page.items.map(unitStateEntity) });
}

/**
 * `GET /state/<name>`: the first state reported for the unit (lowest machine ID), or 404
 * `unit state does not exist`. fleet dereferenced nil here and dropped the connection.
 */
export async function getState(ctx: ApiContext, name: string): Promise<ApiResponse> {
  const [first] = await ctx.registry.listUnitStates({ unit: name });
  if (first === undefined) throw new ApiError(404, 'unit state does not exist');
  return jsonResponse(200, unitStateEntity(first));
}
