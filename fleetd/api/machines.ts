import { validateMachineId, validateMetadataKey, validateMetadataValue } from '../../registry/codec.js';
import { MAX_METADATA_CHANGES } from '../../registry/registry.js';
import type { ApiContext } from './context.js';
import { schedulingState } from './drains.js';
import { machineEntity } from './entities.js';
import { ApiError } from './errors.js';
import { decodeError, fieldPath, jsonType, optionalString, parseJsonBody, readFields } from './json.js';
import { pageFromQuery, paginate } from './pagination.js';
import { requireJsonContentType, type ApiRequest } from './request.js';
import { emptyResponse, jsonResponse, JSON_CONTENT_TYPE, type ApiResponse } from './response.js';

/**
 * The machines resource (docs/fleet-compat.md §8.7): live machines, and their dynamic metadata.
 */

/** fleet's `metadataPathRegex`: `/<machine ID>/metadata/<key>`. */
const METADATA_PATH = /^\/([^/]+)\/metadata\/([A-Za-z0-9_.-]+)$/;

const OPS = ['add', 'remove', 'replace'] as const;
type MetadataOpKind = (typeof OPS)[number];

/** One decoded operation of a PATCH body. */
interface MetadataOp {
  readonly op: string;
  readonly path: string;
  readonly value: string;
}

/** A validated operation, ready to apply. */
interface MetadataChange {
  readonly op: MetadataOpKind;
  readonly machine: string;
  readonly key: string;
  readonly value: string;
}

/**
 * `GET /machines`: one page of live machines, sorted by ID. fleet-ts adds `state` (`draining` or
 * `drained`) to a machine being drained; a schedulable machine has none (fleet's entity, `ready`).
 */
export async function listMachines(ctx: ApiContext, req: ApiRequest): Promise<ApiResponse> {
  const token = pageFromQuery(req.query, ctx.tokenLimit);
  const [machines, drains] = await Promise.all([ctx.registry.listMachines(), ctx.registry.listDrains()]);
  const page = paginate(machines, token);
  const byMachine = new Map(drains.map((d) => [d.mark.machine, d]));
  const entities = page.items.map((m) => {
    const state = schedulingState(byMachine.get(m.id));
    return state === 'ready' ? machineEntity(m) : { ...machineEntity(m), state };
  });
  return jsonResponse(200, { machines: entities, nextPageToken: page.nextPageToken });
}

/**
 * An operation's value: the object `{"value":"x"}` that fleet's code required, or the plain
 * string `"x"` that fleet's documentation showed (fleet refused it; both are accepted here).
 */
function decodeValue(value: unknown, where: string): string {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const inner = readFields(value, where, ['value'] as const);
    return optionalString(inner.value, fieldPath(where, 'value')) ?? '';
  }
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  throw decodeError(
    `field ${JSON.stringify(where)} must be a string or {"value": string}, got ${jsonType(value)}`,
  );
}

function decodeOps(json: unknown): MetadataOp[] {
  if (!Array.isArray(json)) {
    throw decodeError(`expected the body to be a JSON array of operations, got ${jsonType(json)}`);
  }
  return (json as unknown[]).map((item, i) => {
    const where = `[${i}]`;
    const f = readFields(item, where, ['op', 'path', 'value'] as const);
    return {
      op: optionalString(f.op, fieldPath(where, 'op')) ?? '',
      path: optionalString(f.path, fieldPath(where, 'path')) ?? '',
      value: decodeValue(f.value, fieldPath(where, 'value')),
    };
  });
}

function isOpKind(op: string): op is MetadataOpKind {
  return (OPS as readonly string[]).includes(op);
}

/**
 * fleet's checks, in its order, with its messages; then what fleet did not check: the machine ID
 * and the key must be valid, the value one line without control characters (registry/codec.ts
 * has the rules), since they are stored and shown by fleetctl.
 */
function validate(op: MetadataOp, index: number): MetadataChange {
  if (!isOpKind(op.op)) throw new ApiError(400, 'invalid op: expect add, remove, or replace');
  const match = METADATA_PATH.exec(op.path);
  const [, machine, key] = match ?? [];
  if (machine === undefined || key === undefined) throw new ApiError(400, 'machine metadata path invalid');
  if (op.op !== 'remove' && op.value === '') {
    throw new ApiError(400, 'invalid value: add and replace require a value');
  }
  const problem = validateMachineId(machine) ?? validateMetadataKey(key) ?? validateMetadataValue(op.value);
  if (problem !== undefined) throw new ApiError(400, `operation ${index}: ${problem}`);
  return { op: op.op, machine, key, value: op.value };
}

/**
 * `PATCH /machines`: a JSON array of `{op, path, value}` operations on machine metadata, sent as
 * `application/json` (415 otherwise; fleet took any content type). Every operation is validated
 * first; then all are applied in one transaction (add and replace set the key, remove hides it,
 * even a configured one; a later operation on the same key wins), and only if every machine they
 * name is live: otherwise 404 naming the machines, and nothing changes (fleet stored metadata for
 * any ID, half of a batch when a write failed half-way). At most 128 operations (etcd's
 * transaction limit). Success is 204 and, as fleet's functional tests check, carries
 * `Content-Type: application/json`.
 */
export async function patchMachines(ctx: ApiContext, req: ApiRequest): Promise<ApiResponse> {
  requireJsonContentType(req);
  const changes = decodeOps(parseJsonBody(await req.body())).map(validate);
  if (changes.length > MAX_METADATA_CHANGES) {
    throw new ApiError(400, `at most ${MAX_METADATA_CHANGES} operations at once, got ${changes.length}`);
  }
  const missing = await ctx.registry.changeMachineMetadata(
    changes.map((c) => ({ machine: c.machine, key: c.key, value: c.op === 'remove' ? undefined : c.value })),
  );
  if (missing.length > 0) {
    throw new ApiError(
      404,
      `no live machine ${missing.map((m) => JSON.stringify(m)).join(', ')}: no metadata was changed`,
    );
  }
  if (changes.length > 0) ctx.logger.info('machine metadata changed', { operations: changes.length });
  return emptyResponse(204, { 'Content-Type': JSON_CONTENT_TYPE });
}
