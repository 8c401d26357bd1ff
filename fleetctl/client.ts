/* eslint-disable max-lines -- one client of every API call fleetctl makes (fleet's and fleet-ts's drains and events); entity decoders live beside it in client-ops.ts, the calls still here. */
import { FleetError } from '../lib/errors.js';
import { toDrain, type ApiDrain } from './client-ops.js';
import type { RawResponse, Transport } from './transport.js';

/**
 * fleetctl's client for fleet's HTTP API v1 (docs/fleet-compat.md §8): the entities as JSON carries them,
 * and one method per call fleetctl makes. Like fleet's Google API client it adds `?alt=json` to
 * every request, treats 404 on a single unit as "absent", and follows `nextPageToken` to read
 * whole collections.
 */

/** One unit-file option (`UnitOption`). */
export interface ApiUnitOption {
  readonly section: string;
  readonly name: string;
  readonly value: string;
}

/** A unit (`Unit`). Empty fields are omitted by the server; so they are optional here. */
export interface ApiUnit {
  readonly name: string;
  readonly options: readonly ApiUnitOption[];
  readonly desiredState?: string;
  readonly currentState?: string;
  readonly machineID?: string;
  /** fleet-ts extension: why the engine cannot place the unit, while it cannot. */
  readonly unplaceableReason?: string;
}

/** What one machine's agent reports for a unit (`UnitState`). */
export interface ApiUnitState {
  readonly name: string;
  readonly hash?: string;
  readonly machineID?: string;
  readonly systemdLoadState?: string;
  readonly systemdActiveState?: string;
  readonly systemdSubState?: string;
}

/** A live machine (`Machine`). */
export interface ApiMachine {
  readonly id: string;
  readonly primaryIP?: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** fleet-ts: `draining` or `drained` while the machine is drained; absent (ready) otherwise. */
  readonly state?: string;
}

/** An HTTP status other than the ones a call expects, with fleet's error message when it sent one. */
export class ApiError extends FleetError {
  override readonly name = 'ApiError';

  constructor(
    readonly status: number,
    readonly apiMessage: string,
  ) {
    super('API_ERROR', apiMessage === '' ? `API error ${status}` : `API error ${status}: ${apiMessage}`, {
      retryable: status === 503,
    });
  }
}

const API = '/fleet/v1';

/** Go's url.PathEscape for one segment: `@` and `:` stay readable, everything else is escaped. */
function escapeSegment(segment: string): string {
  return encodeURIComponent(segment).replace(/%40/g, '@').replace(/%3A/gi, ':');
}

function query(params: Readonly<Record<string, string | undefined>>): string {
  const q = new URLSearchParams({ alt: 'json' });
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.append(k, v);
  return `?${q.toString()}`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function decodeError(res: RawResponse): ApiError {
  try {
    const body: unknown = JSON.parse(res.body);
    if (isRecord(body) && isRecord(body.error) && typeof body.error.message === 'string') {
      return new ApiError(res.status, body.error.message);
    }
  } catch {
    // Not fleet's error entity (a proxy's page, say): show the body itself, shortened.
  }
  const text = res.body.trim();
  return new ApiError(res.status, text.length > 200 ? `${text.slice(0, 200)}...` : text);
}

function parseBody(res: RawResponse): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(res.body === '' ? '{}' : res.body);
  } catch {
    throw new FleetError('API_ERROR', `fleetd sent a response that is not JSON: ${res.body.slice(0, 100)}`);
  }
  if (!isRecord(body)) throw new FleetError('API_ERROR', 'fleetd sent a JSON response that is not an object');
  return body;
}

function toOption(v: unknown): ApiUnitOption | undefined {
  if (!isRecord(v)) return undefined;
  const { section, name, value } = v;
  if (typeof section !== 'string' || typeof name !== 'string') return undefined;
  return { section, name, value: typeof value === 'string' ? value : '' };
}

function toUnit(v: unknown): ApiUnit | undefined {
  if (!isRecord(v) || typeof v.name !== 'string') return undefined;
  const options = Array.isArray(v.options)
    ? v.options.map(toOption).filter((o): o is ApiUnitOption => o !== undefined)
    : [];
  const unit: {
    name: string;
    options: ApiUnitOption[];
    desiredState?: string;
    currentState?: string;
    machineID?: string;
    unplaceableReason?: string;
  } = { name: v.name, options };
  const desired = str(v.desiredState);
  const current = str(v.currentState);
  const machine = str(v.machineID);
  const reason = str(v.unplaceableReason);
  if (desired !== undefined) unit.desiredState = desired;
  if (current !== undefined) unit.currentState = current;
  if (machine !== undefined) unit.machineID = machine;
  if (reason !== undefined) unit.unplaceableReason = reason;
  return unit;
}

function toState(v: unknown): ApiUnitState | undefined {
  if (!isRecord(v) || typeof v.name !== 'string') return undefined;
  const state: {
    name: string;
    hash?: string;
    machineID?: string;
    systemdLoadState?: string;
    systemdActiveState?: string;
    systemdSubState?: string;
  } = { name: v.name };
  for (const key of [
    'hash',
    'machineID',
    'systemdLoadState',
    'systemdActiveState',
    'systemdSubState',
  ] as const) {
    const value = str(v[key]);
    if (value !== undefined) state[key] = value;
  }
  return state;
}

function toMachine(v: unknown): ApiMachine | undefined {
  if (!isRecord(v) || typeof v.id !== 'string') return undefined;
  const metadata: Record<string, string> = {};
  if (isRecord(v.metadata)) {
    for (const [k, value] of Object.entries(v.metadata)) if (typeof value === 'string') metadata[k] = value;
  }
  const ip = str(v.primaryIP);
  const state = str(v.state);
  return {
    id: v.id,
    metadata,
    ...(ip === undefined ? {} : { primaryIP: ip }),
    ...(state === undefined ? {} : { state }),
  };
}

// A server that keeps handing out tokens is broken; stop rather than loop forever.
const MAX_PAGES = 10_000;

export type { ApiDrain, ApiDrainUnit } from './client-ops.js';

/** The API calls fleetctl makes. Every method rejects with `API_UNREACHABLE` or `ApiError`. */
export class FleetClient {
  constructor(private readonly transport: Transport) {}

  /** The endpoint as the user gave it, for messages. */
  get endpointName(): string {
    return this.transport.endpointName;
  }

  private async getJson(path: string, params: Readonly<Record<string, string | undefined>> = {}) {
    const res = await this.transport.request('GET', path + query(params));
    if (res.status !== 200) throw decodeError(res);
    return parseBody(res);
  }

  private async list<T>(
    path: string,
    key: string,
    decode: (v: unknown) => T | undefined,
    params: Readonly<Record<string, string | undefined>> = {},
  ): Promise<T[]> {
    const all: T[] = [];
    let token: string | undefined;
    const seen = new Set<string>();
    for (let page = 0; page < MAX_PAGES; page++) {
      const body = await this.getJson(path, { ...params, nextPageToken: token });
      const items = body[key];
      if (Array.isArray(items)) {
        for (const item of items) {
          const decoded = decode(item);
          if (decoded !== undefined) all.push(decoded);
        }
      }
      token = str(body.nextPageToken);
      // fleet serves an extra empty page when the total is a multiple of the page size.
      if (token === undefined || seen.has(token) || !Array.isArray(items) || items.length === 0) break;
      seen.add(token);
    }
    return all;
  }

  /** Every unit, sorted by name (`GET /units`). */
  listUnits(): Promise<ApiUnit[]> {
    return this.list(`${API}/units`, 'units', toUnit);
  }

  /**
   * A unit's `systemctl status` or journal on a machine, through fleetd (`GET
   * /units/<name>/status` or `/journal`, a fleet-ts extension): text goes to `write` as it
   * arrives; resolves with the program's exit status. Throws `ApiError` for an HTTP error (504:
   * the machine did not answer) and `API_ERROR` with the target's message when it failed there.
   */
  async unitOutput(
    name: string,
    kind: 'status' | 'journal',
    params: Readonly<Record<string, string | undefined>>,
    write: (text: string) => void,
  ): Promise<number> {
    let pending = '';
    let exit: number | undefined;
    let failure: string | undefined;
    const take = (line: string): void => {
      if (line === '') return;
      let o: unknown;
      try {
        o = JSON.parse(line);
      } catch {
        failure ??= `fleetd sent a malformed output line: ${line.slice(0, 100)}`;
        return;
      }
      if (!isRecord(o)) return;
      if (typeof o.text === 'string') write(o.text);
      else if (typeof o.exit === 'number') exit = o.exit;
      else if (typeof o.error === 'string') failure ??= o.error;
    };
    const res = await this.transport.stream(
      `${API}/units/${escapeSegment(name)}/${kind}${query(params)}`,
      (text) => {
        pending += text;
        let nl = pending.indexOf('\n');
        while (nl !== -1) {
          take(pending.slice(0, nl));
          pending = pending.slice(nl + 1);
          nl = pending.indexOf('\n');
        }
      },
    );
    if (res.status !== 200) throw decodeError(res);
    take(pending);
    if (failure !== undefined) throw new FleetError('API_ERROR', failure);
    if (exit === undefined) throw new FleetError('API_ERROR', `the answer for ${name} ended early`);
    return exit;
  }

  /** One unit, or undefined when fleetd says 404 (`GET /units/<name>`). */
  async getUnit(name: string): Promise<ApiUnit | undefined> {
    const res = await this.transport.request('GET', `${API}/units/${escapeSegment(name)}${query({})}`);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw decodeError(res);
    const unit = toUnit(parseBody(res));
    if (unit === undefined) throw new FleetError('API_ERROR', `fleetd sent a malformed unit for ${name}`);
    return unit;
  }

  /**
   * Creates a unit, or replaces an existing one whose options differ (`PUT /units/<name>` with
   * options and no desired state, as fleet's client does: the desired state becomes `inactive`).
   */
  async createUnit(name: string, options: readonly ApiUnitOption[]): Promise<void> {
    const body = {
      name,
      options: options.map((o) => ({ section: o.section, name: o.name, value: o.value })),
    };
    const res = await this.transport.request('PUT', `${API}/units/${escapeSegment(name)}${query({})}`, body);
    if (res.status !== 201 && res.status !== 204) throw decodeError(res);
  }

  /** Sets a unit's desired state (`PUT /units/<name>` with `desiredState`). */
  async setDesiredState(name: string, desiredState: string): Promise<void> {
    const res = await this.transport.request('PUT', `${API}/units/${escapeSegment(name)}${query({})}`, {
      name,
      desiredState,
    });
    if (res.status !== 204 && res.status !== 201) throw decodeError(res);
  }

  /** Destroys a unit; false when it did not exist (`DELETE /units/<name>`, 404). */
  async destroyUnit(name: string): Promise<boolean> {
    const res = await this.transport.request('DELETE', `${API}/units/${escapeSegment(name)}${query({})}`);
    if (res.status === 404) return false;
    if (res.status !== 204 && res.status !== 200) throw decodeError(res);
    return true;
  }

  /** Unit states, sorted by (unit, machine), optionally only one unit's (`GET /state`). */
  listUnitStates(filter: { readonly unitName?: string; readonly machineID?: string } = {}) {
    return this.list(`${API}/state`, 'states', toState, {
      unitName: filter.unitName,
      machineID: filter.machineID,
    });
  }

  /** Live machines, sorted by ID (`GET /machines`). */
  listMachines(): Promise<ApiMachine[]> {
    return this.list(`${API}/machines`, 'machines', toMachine);
  }

  /**
   * Cluster events, oldest first (`GET /events`, every page), with the revision to follow after.
   * `params` are the API's filters (`unit` may repeat).
   */
  async listEvents(params: URLSearchParams): Promise<{ events: ApiEvent[]; revision: number }> {
    const events: ApiEvent[] = [];
    let revision = 0;
    let token: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const q = new URLSearchParams(params);
      if (token !== undefined) q.set('nextPageToken', token);
      const res = await this.transport.request('GET', `${API}/events?${q.toString()}`);
      if (res.status !== 200) throw decodeError(res);
      const body = parseBody(res);
      if (page === 0 && typeof body.revision === 'number') revision = body.revision;
      if (Array.isArray(body.events)) for (const e of body.events) if (isEvent(e)) events.push(e);
      token = str(body.nextPageToken);
      if (token === undefined) break;
    }
    return { events, revision };
  }

  /** Follows events (`GET /events?watch=true`), calling `onEvent` for each, until the stream ends. */
  async followEvents(params: URLSearchParams, onEvent: (e: ApiEvent) => void): Promise<void> {
    const q = new URLSearchParams(params);
    q.set('watch', 'true');
    let pending = '';
    const res = await this.transport.stream(`${API}/events?${q.toString()}`, (text) => {
      pending += text;
      let nl = pending.indexOf('\n');
      while (nl !== -1) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        nl = pending.indexOf('\n');
        try {
          const e: unknown = JSON.parse(line);
          if (isEvent(e)) onEvent(e);
        } catch {
          // A torn line cannot happen on a healthy stream; skip it rather than stop following.
        }
      }
    });
    if (res.status !== 200) throw decodeError(res);
  }

  /** A machine's drain; `state` is `ready` when it is not draining (`GET /machines/<id>/drain`). */
  async getDrain(machine: string): Promise<ApiDrain> {
    const body = await this.getJson(`${API}/machines/${escapeSegment(machine)}/drain`);
    return toDrain(body, machine);
  }

  /** Marks a machine draining (`PUT /machines/<id>/drain`). */
  async drain(machine: string, options: { readonly maxParallel: number; readonly force: boolean }) {
    const res = await this.transport.request(
      'PUT',
      `${API}/machines/${escapeSegment(machine)}/drain${query({})}`,
      options,
    );
    if (res.status !== 200) throw decodeError(res);
    return toDrain(parseBody(res), machine);
  }

  /** Undrains a machine; false when it was not draining (`DELETE /machines/<id>/drain`, 404). */
  async undrain(machine: string): Promise<boolean> {
    const res = await this.transport.request(
      'DELETE',
      `${API}/machines/${escapeSegment(machine)}/drain${query({})}`,
    );
    if (res.status === 404) return false;
    if (res.status !== 204) throw decodeError(res);
    return true;
  }
}

/** One cluster event as the API sends it (fleetd/api/events.ts). */
export interface ApiEvent {
  readonly id: string;
  readonly revision: number;
  readonly time: string;
  readonly kind: string;
  readonly unit?: string;
  readonly machine?: string;
  readonly message: string;
  readonly reporter: string;
}

function isEvent(v: unknown): v is ApiEvent {
  return (
    isRecord(v) &&
    typeof v.time === 'string' &&
    typeof v.kind === 'string' &&
    typeof v.message === 'string' &&
    typeof v.revision === 'number'
  );
}
