import type { Placement, UnitRecord } from '../../registry/model.js';
import { formatProblem } from '../../unit/problems.js';
import { invalidDesiredStateMessage, parseDesiredState, type DesiredState } from '../../unit/states.js';
import { goQuote, isTemplate, validateUnitName } from '../../unit/unit-name.js';
import { unitFromOptions } from '../../unit/unit.js';
import type { ApiContext } from './context.js';
import { unitEntity, type UnitOptionEntity } from './entities.js';
import { ApiError } from './errors.js';
import { fieldPath, optionalArray, optionalString, parseJsonBody, readFields } from './json.js';
import { pageFromQuery, paginate } from './pagination.js';
import { requireJsonContentType, type ApiRequest } from './request.js';
import { emptyResponse, jsonResponse, type ApiResponse } from './response.js';

/**
 * The units resource: `GET /units`, and `GET`, `PUT`, `DELETE /units/<name>` (docs/fleet-compat.md §8.5).
 *
 * `PUT` follows fleet's order of checks (content type, body, name, then create / replace /
 * update) with these fixes: the desired state is validated everywhere (fleet stored any string on
 * update and broke the unit), a template cannot be created already active either, options are
 * validated on replace too (fleet skipped it), and invalid options report every problem at once,
 * joined with `"; "` so the message stays one line.
 */

const NOT_FOUND = 'unit does not exist';
const NO_OPTIONS = 'unit does not exist and options field empty';
const NO_DESIRED_STATE = 'must provide DesiredState to update existing unit';
/** How often a PUT re-reads after losing a race with a concurrent destroy or replace. */
const MAX_PUT_ATTEMPTS = 3;

/** `GET /units`: one page of units, sorted by name. */
export async function listUnits(ctx: ApiContext, req: ApiRequest): Promise<ApiResponse> {
  const token = pageFromQuery(req.query, ctx.tokenLimit);
  const r = ctx.registry;
  const [units, schedule, states, reasons] = await Promise.all([
    r.listUnits(),
    r.listSchedule(),
    r.listUnitStates(),
    r.listUnplaceable(),
  ]);
  const page = paginate(units, token);
  const placements = new Map<string, Placement>(schedule.map((p) => [p.unit, p]));
  const statesByUnit = groupBy(states, (s) => s.unit);
  return jsonResponse(200, {
    nextPageToken: page.nextPageToken,
    units: page.items.map((stored) =>
      unitEntity(
        stored,
        {
          placement: placements.get(stored.unit.name),
          states: statesByUnit.get(stored.unit.name) ?? [],
          unplaceableReason: reasons.get(stored.unit.name),
        },
        'list',
      ),
    ),
  });
}

/** `GET /units/<name>`: the unit, or 404 `unit does not exist`. */
export async function getUnit(ctx: ApiContext, name: string): Promise<ApiResponse> {
  const r = ctx.registry;
  // One round trip of parallel reads; the evidence is ignored when the unit does not exist.
  const [stored, placement, states, unplaceableReason] = await Promise.all([
    r.getUnit(name),
    r.getPlacement(name),
    r.listUnitStates({ unit: name }),
    r.getUnplaceable(name),
  ]);
  if (stored === undefined) throw new ApiError(404, NOT_FOUND);
  return jsonResponse(200, unitEntity(stored, { placement, states, unplaceableReason }, 'single'));
}

/** `DELETE /units/<name>`: 204 without a body, or 404 `unit does not exist`. One transaction. */
export async function deleteUnit(ctx: ApiContext, name: string): Promise<ApiResponse> {
  if (!(await ctx.registry.destroyUnit(name))) throw new ApiError(404, NOT_FOUND);
  ctx.logger.info('unit destroyed', { unit: name });
  return emptyResponse(204);
}

/** A decoded PUT body. Read-only fields of the entity are accepted and ignored. */
interface UnitBody {
  readonly name: string | undefined;
  readonly desiredState: string | undefined;
  readonly options: readonly UnitOptionEntity[];
}

const UNIT_FIELDS = [
  'name',
  'desiredState',
  'options',
  'currentState',
  'machineID',
  'unplaceableReason',
] as const;
const OPTION_FIELDS = ['section', 'name', 'value'] as const;

function decodeUnitBody(json: unknown): UnitBody {
  const f = readFields(json, '', UNIT_FIELDS);
  for (const readOnly of ['currentState', 'machineID', 'unplaceableReason'] as const) {
    optionalString(f[readOnly], readOnly);
  }
  const options = (optionalArray(f.options, 'options') ?? []).map((item, i) => {
    const where = `options[${i}]`;
    const o = readFields(item, where, OPTION_FIELDS);
    return {
      section: optionalString(o.section, fieldPath(where, 'section')) ?? '',
      name: optionalString(o.name, fieldPath(where, 'name')) ?? '',
      value: optionalString(o.value, fieldPath(where, 'value')) ?? '',
    };
  });
  return {
    name: optionalString(f.name, 'name'),
    desiredState: optionalString(f.desiredState, 'desiredState'),
    options,
  };
}

/**
 * `PUT /units/<name>`: creates (201), replaces (201) or changes the desired state of (204) a unit.
 *
 * - No such unit: `options` are required (409 otherwise), validated (400 with every problem),
 *   and stored with `desiredState` or `inactive`.
 * - The unit exists and `options` describe a different unit: it is replaced, contents and desired
 *   state together, with `desiredState` or `inactive` as fleet did (fleetctl's `--replace` sends
 *   no desired state, waits for `inactive`, then sets the state it wants). Its placement is kept,
 *   so the agent sees the new hash and reloads the unit.
 * - Otherwise (no options, or the same ones): `desiredState` is required (409) and set (204).
 */
export async function putUnit(ctx: ApiContext, req: ApiRequest, urlName: string): Promise<ApiResponse> {
  requireJsonContentType(req);
  const body = decodeUnitBody(parseJsonBody(await req.body()));
  const name = body.name === undefined || body.name === '' ? urlName : body.name;
  if (name !== urlName) {
    throw new ApiError(
      400,
      `name in URL ${goQuote(urlName)} differs from unit name in request body ${goQuote(name)}`,
    );
  }
  const badName = validateUnitName(name);
  if (badName !== undefined) throw new ApiError(400, badName);
  const desired = readDesiredState(body.desiredState);
  if (desired !== undefined && desired !== 'inactive' && isTemplate(name)) {
    throw new ApiError(400, `cannot activate template ${goQuote(name)}`);
  }
  if (body.options.length === 0) return updateDesiredState(ctx, name, desired);

  const built = unitFromOptions(name, body.options);
  if (!built.ok) throw new ApiError(400, built.problems.map(formatProblem).join('; '));
  const unit = built.value;
  const record: UnitRecord = {
    name,
    hash: unit.hash,
    options: unit.file.options.map((o) => ({ section: o.section, name: o.name, value: o.value })),
    fleet: unit.fleet,
  };
  return submit(ctx, record, desired);
}

/** A present, non-empty desiredState must be one of the three states (400 otherwise). */
function readDesiredState(value: string | undefined): DesiredState | undefined {
  if (value === undefined || value === '') return undefined;
  const state = parseDesiredState(value);
  if (state === undefined) throw new ApiError(400, invalidDesiredStateMessage(value));
  return state;
}

async function updateDesiredState(
  ctx: ApiContext,
  name: string,
  desired: DesiredState | undefined,
): Promise<ApiResponse> {
  if (desired === undefined) {
    const exists = (await ctx.registry.getUnit(name)) !== undefined;
    throw new ApiError(409, exists ? NO_DESIRED_STATE : NO_OPTIONS);
  }
  if (!(await ctx.registry.setDesiredState(name, desired))) throw new ApiError(409, NO_OPTIONS);
  return emptyResponse(204);
}

async function submit(
  ctx: ApiContext,
  record: UnitRecord,
  desired: DesiredState | undefined,
): Promise<ApiResponse> {
  for (let attempt = 1; attempt <= MAX_PUT_ATTEMPTS; attempt++) {
    const result = await ctx.registry.submitUnit(record, desired ?? 'inactive', { replace: true });
    switch (result.kind) {
      case 'created':
        ctx.logger.info('unit created', { unit: record.name, hash: record.hash });
        return emptyResponse(201);
      case 'replaced':
        ctx.logger.info('unit replaced', {
          unit: record.name,
          hash: record.hash,
          previousHash: result.previousHash,
        });
        return emptyResponse(201);
      case 'unchanged':
        // The same unit exists: this is an update of its desired state.
        if (desired === undefined) throw new ApiError(409, NO_DESIRED_STATE);
        if (await ctx.registry.setDesiredState(record.name, desired)) return emptyResponse(204);
        // Destroyed in between: submit again.
        break;
      case 'conflict':
        // Not expected with replace; a concurrent writer won. Try again.
        break;
    }
  }
  throw new ApiError(409, `unit ${goQuote(record.name)} changed concurrently; try again`);
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group === undefined) groups.set(k, [item]);
    else group.push(item);
  }
  return groups;
}
