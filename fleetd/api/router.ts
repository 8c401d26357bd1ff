import type { ApiContext } from './context.js';
import { getDiscovery } from './discovery.js';
import { deleteDrain, getDrain, putDrain } from './drains.js';
import { ApiError } from './errors.js';
import { listEvents } from './events.js';
import { listMachines, patchMachines } from './machines.js';
import type { ApiRequest } from './request.js';
import type { ApiResponse } from './response.js';
import { getState, listStates } from './state.js';
import { getUnitOutput } from './unit-output.js';
import { deleteUnit, getUnit, listUnits, putUnit } from './units.js';

/**
 * Routing (fleet's `api/mux.go`): every resource is mounted under `/fleet/v1` and `/v1-alpha`.
 *
 * | path                       | methods          |
 * |----------------------------|------------------|
 * | `/`, `/fleet/v1`           | none: 405        |
 * | `/fleet/v1/discovery`      | GET (also `discovery.json`, fleet's older name) |
 * | `/fleet/v1/machines`       | GET, PATCH       |
 * | `/fleet/v1/machines/<id>/drain` | GET, PUT, DELETE (fleet-ts: drains.ts) |
 * | `/fleet/v1/units`          | GET              |
 * | `/fleet/v1/units/<name>`   | GET, PUT, DELETE |
 * | `/fleet/v1/units/<name>/status`, `.../journal` | GET: the unit's output on its machine (unit-output.ts) |
 * | `/fleet/v1/state`          | GET              |
 * | `/fleet/v1/state/<name>`   | GET              |
 * | `/fleet/v1/events`         | GET (`?watch=true` streams NDJSON; events.ts) |
 * | `/metrics`                 | GET: Prometheus text format (404 when the server has no metrics) |
 *
 * Any other path is 404 with an empty message (a trailing slash, an empty name and extra segments
 * included). A method a resource does not serve is 405 with fleet's message and an `Allow` header.
 * Path segments are percent-decoded one by one, so `%2F` stays inside a unit name.
 */

/** Serves one request that was routed to it. */
export type Handler = (ctx: ApiContext, req: ApiRequest) => Promise<ApiResponse>;

interface Resource {
  /** A short name for logs, e.g. `units/<name>`. */
  readonly name: string;
  readonly methods: Readonly<Partial<Record<string, Handler>>>;
  /** fleet's 405 message for this resource. */
  readonly notAllowed: string;
  /** For a machine's drain resource: the machine it names. */
  readonly drainOf?: string;
}

/** What the router found for a request. */
export interface Route {
  /** The resource, for logs: `units`, `units/<name>`, `state/<name>`, ... */
  readonly resource: string;
  readonly handler: Handler;
  /**
   * Set for `machines/<id>/drain`: the machine the request drains or undrains. Access control
   * lets a machine drain itself through its own unix socket (`fleetctl drain $(cat
   * /etc/machine-id)` on the node), which `isSelfDrain` decides.
   */
  readonly drainOf?: string;
}

/**
 * True when a request on a fleetd's own unix socket drains or undrains that very machine: allowed
 * even where that socket is otherwise read-only, so an operator on the node can take it out for
 * maintenance without cluster-wide write access.
 */
export function isSelfDrain(r: Route, localMachineId: string | undefined, viaUnixSocket: boolean): boolean {
  return viaUnixSocket && localMachineId !== undefined && r.drainOf === localMachineId;
}

const ONLY_GET = 'only GET supported against this resource';

/** `/` and `/fleet/v1` themselves: fleet answered 405 with an empty message for every method. */
const ROOT: Resource = { name: 'root', methods: {}, notAllowed: '' };

const UNITS: Resource = {
  name: 'units',
  methods: { GET: listUnits },
  notAllowed: ONLY_GET,
};

const MACHINES: Resource = {
  name: 'machines',
  methods: { GET: listMachines, PATCH: patchMachines },
  notAllowed: 'only GET and PATCH supported against this resource',
};

const STATES: Resource = {
  name: 'state',
  methods: { GET: listStates },
  notAllowed: ONLY_GET,
};

/**
 * fleet answered other methods here with 400; this is a 405 like every other resource, with
 * fleet's message.
 */
const EVENTS: Resource = {
  name: 'events',
  methods: { GET: listEvents },
  notAllowed: ONLY_GET,
};

const DISCOVERY: Resource = {
  name: 'discovery',
  methods: { GET: () => Promise.resolve(getDiscovery()) },
  notAllowed: 'only HTTP GET supported against this resource',
};

/** `/metrics`, outside the API prefixes as Prometheus expects it (fleet served it there too). */
const METRICS: Resource = {
  name: 'metrics',
  methods: {
    GET: async (ctx) => {
      if (ctx.scrape === undefined) throw new ApiError(404);
      const scrape = await ctx.scrape();
      return { status: 200, body: scrape.body, headers: { 'Content-Type': scrape.contentType } };
    },
  },
  notAllowed: ONLY_GET,
};

function unitItem(name: string): Resource {
  return {
    name: 'units/<name>',
    methods: {
      GET: (ctx) => getUnit(ctx, name),
      PUT: (ctx, req) => putUnit(ctx, req, name),
      DELETE: (ctx) => deleteUnit(ctx, name),
    },
    notAllowed: 'only GET, PUT and DELETE supported against this resource',
  };
}

function unitOutput(name: string, kind: 'status' | 'journal'): Resource {
  return {
    name: `units/<name>/${kind}`,
    methods: { GET: (ctx, req) => getUnitOutput(ctx, req, name, kind) },
    notAllowed: ONLY_GET,
  };
}

function drainItem(machine: string): Resource {
  return {
    name: 'machines/<id>/drain',
    methods: {
      GET: (ctx) => getDrain(ctx, machine),
      PUT: (ctx, req) => putDrain(ctx, req, machine),
      DELETE: (ctx) => deleteDrain(ctx, machine),
    },
    notAllowed: 'only GET, PUT and DELETE supported against this resource',
    drainOf: machine,
  };
}

function stateItem(name: string): Resource {
  return { name: 'state/<name>', methods: { GET: (ctx) => getState(ctx, name) }, notAllowed: ONLY_GET };
}

/** The segments of the API below a prefix, or undefined when the path is under no prefix. */
function apiSegments(segments: readonly string[]): readonly string[] | undefined {
  if (segments[0] === 'fleet' && segments[1] === 'v1') return segments.slice(2);
  if (segments[0] === 'v1-alpha') return segments.slice(1);
  return undefined;
}

function resolve(segments: readonly string[]): Resource | undefined {
  if (segments.length === 1 && segments[0] === '') return ROOT;
  if (segments.length === 1 && segments[0] === 'metrics') return METRICS;
  const api = apiSegments(segments);
  if (api === undefined) return undefined;
  const [collection, item, ...extra] = api;
  if (collection === undefined) return ROOT;
  if (collection === 'units' && item !== undefined && item !== '' && extra.length === 1) {
    const [sub] = extra;
    return sub === 'status' || sub === 'journal' ? unitOutput(item, sub) : undefined;
  }
  if (
    collection === 'machines' &&
    item !== undefined &&
    item !== '' &&
    extra.length === 1 &&
    extra[0] === 'drain'
  ) {
    return drainItem(item);
  }
  if (extra.length > 0 || item === '') return undefined;
  switch (collection) {
    case 'units':
      return item === undefined ? UNITS : unitItem(item);
    case 'state':
      return item === undefined ? STATES : stateItem(item);
    case 'machines':
      return item === undefined ? MACHINES : undefined;
    case 'events':
      return item === undefined ? EVENTS : undefined;
    case 'discovery':
    case 'discovery.json':
      return item === undefined ? DISCOVERY : undefined;
    default:
      return undefined;
  }
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    // decodeURIComponent says only "URI malformed"; name the segment instead.
    throw new ApiError(400, `invalid URL escape in path segment ${JSON.stringify(segment)}`);
  }
}

/**
 * Finds the handler for `method` on `path` (the request target's path, still percent-encoded).
 * Throws ApiError: 404 for an unknown path, 405 (with `Allow`) for a method the resource does not
 * serve, 400 for a path that cannot be percent-decoded.
 */
export function route(method: string, path: string): Route {
  if (!path.startsWith('/')) throw new ApiError(404);
  const resource = resolve(path.slice(1).split('/').map(decodeSegment));
  if (resource === undefined) throw new ApiError(404);
  const handler = resource.methods[method];
  if (handler === undefined) {
    throw new ApiError(405, resource.notAllowed, { Allow: Object.keys(resource.methods).join(', ') });
  }
  return resource.drainOf === undefined
    ? { resource: resource.name, handler }
    : { resource: resource.name, handler, drainOf: resource.drainOf };
}
