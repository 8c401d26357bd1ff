import { VERSION } from '../../lib/version.js';
import { JSON_CONTENT_TYPE, type ApiResponse } from './response.js';

/**
 * `GET /fleet/v1/discovery`: a Google API discovery document (`discovery#restDescription`)
 * describing the v1 API, as fleet served its `schema/v1.json`. Ours is written for fleet-ts: it
 * names the service `fleet`, documents the `unplaceableReason` extension, and describes the state
 * item and machine PATCH methods fleet served but did not list.
 */

const stringType = { type: 'string' } as const;
const nextPageToken = { type: 'string', location: 'query' } as const;
const unitName = { type: 'string', location: 'path', required: true } as const;
const states = ['inactive', 'loaded', 'launched'];

function page(item: string, field: string): object {
  return {
    id: `${item}Page`,
    type: 'object',
    properties: { [field]: { type: 'array', items: { $ref: item } }, nextPageToken: stringType },
  };
}

function method(
  id: string,
  httpMethod: string,
  path: string,
  description: string,
  extra: Record<string, unknown> = {},
): object {
  return { id: `fleet.${id}`, httpMethod, path, description, ...extra };
}

const itemMethod = { parameters: { unitName }, parameterOrder: ['unitName'] };

/** The discovery document, as a value. */
export const DISCOVERY_DOCUMENT: object = {
  kind: 'discovery#restDescription',
  discoveryVersion: 'v1',
  id: 'fleet:v1',
  name: 'fleet',
  version: 'v1',
  revision: VERSION,
  title: 'fleet API',
  description: 'Submit, schedule and inspect systemd units in a fleet-ts cluster.',
  protocol: 'rest',
  basePath: '/fleet/v1/',
  servicePath: 'fleet/v1/',
  schemas: {
    Machine: {
      id: 'Machine',
      type: 'object',
      properties: {
        id: stringType,
        primaryIP: stringType,
        metadata: { type: 'object', additionalProperties: stringType },
      },
    },
    MachinePage: page('Machine', 'machines'),
    UnitOption: {
      id: 'UnitOption',
      type: 'object',
      properties: { section: stringType, name: stringType, value: stringType },
    },
    Unit: {
      id: 'Unit',
      type: 'object',
      properties: {
        name: stringType,
        options: { type: 'array', items: { $ref: 'UnitOption' } },
        desiredState: { type: 'string', enum: states },
        currentState: { type: 'string', enum: states, readOnly: true },
        machineID: { type: 'string', readOnly: true },
        unplaceableReason: {
          type: 'string',
          readOnly: true,
          description: 'fleet-ts extension: why the engine could not place the unit at its last reconcile.',
        },
      },
    },
    UnitPage: page('Unit', 'units'),
    UnitState: {
      id: 'UnitState',
      type: 'object',
      properties: {
        name: stringType,
        hash: stringType,
        machineID: stringType,
        systemdLoadState: stringType,
        systemdActiveState: stringType,
        systemdSubState: stringType,
      },
    },
    UnitStatePage: page('UnitState', 'states'),
  },
  resources: {
    Machines: {
      methods: {
        List: method('Machine.List', 'GET', 'machines', 'Retrieve a page of Machine objects.', {
          parameters: { nextPageToken },
          response: { $ref: 'MachinePage' },
        }),
        Patch: method('Machine.Patch', 'PATCH', 'machines', 'Add, replace or remove machine metadata.'),
      },
    },
    Units: {
      methods: {
        List: method('Unit.List', 'GET', 'units', 'Retrieve a page of Unit objects.', {
          parameters: { nextPageToken },
          response: { $ref: 'UnitPage' },
        }),
        Get: method('Unit.Get', 'GET', 'units/{unitName}', 'Retrieve a single Unit object.', {
          ...itemMethod,
          response: { $ref: 'Unit' },
        }),
        Delete: method(
          'Unit.Delete',
          'DELETE',
          'units/{unitName}',
          'Delete the referenced Unit object.',
          itemMethod,
        ),
        Set: method('Unit.Set', 'PUT', 'units/{unitName}', 'Create or update a Unit.', {
          ...itemMethod,
          request: { $ref: 'Unit' },
        }),
      },
    },
    UnitState: {
      methods: {
        List: method('UnitState.List', 'GET', 'state', 'Retrieve a page of UnitState objects.', {
          parameters: {
            nextPageToken,
            unitName: { type: 'string', location: 'query' },
            machineID: { type: 'string', location: 'query' },
          },
          response: { $ref: 'UnitStatePage' },
        }),
        Get: method('UnitState.Get', 'GET', 'state/{unitName}', 'Retrieve the first UnitState of a unit.', {
          ...itemMethod,
          response: { $ref: 'UnitState' },
        }),
      },
    },
  },
};

const body = JSON.stringify(DISCOVERY_DOCUMENT);

/** `GET /discovery`: the discovery document. */
export function getDiscovery(): ApiResponse {
  return { status: 200, body, headers: { 'Content-Type': JSON_CONTENT_TYPE } };
}
