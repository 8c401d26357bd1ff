import { FleetError } from '../lib/errors.js';
import { isEventKind, type ClusterEvent } from '../unit/cluster-events.js';
import { CODEC_VERSION } from './codec.js';

/** Stored events, versioned JSON like every value (codec.ts); a bad one is REGISTRY_CORRUPT. */

function corrupt(key: string, why: string): FleetError {
  return new FleetError('REGISTRY_CORRUPT', `stored value at ${key} is invalid: ${why}`);
}

function field(key: string, o: Record<string, unknown>, name: string, type: 'string' | 'number'): unknown {
  const v = o[name];
  if (typeof v !== type || (type === 'number' && !Number.isFinite(v))) {
    throw corrupt(key, `field ${name} is not a ${type}`);
  }
  return v;
}

export function encodeEvent(e: ClusterEvent): string {
  return JSON.stringify({
    v: CODEC_VERSION,
    time: e.time,
    kind: e.kind,
    ...(e.unit === undefined ? {} : { unit: e.unit }),
    ...(e.machine === undefined ? {} : { machine: e.machine }),
    message: e.message,
    reporter: e.reporter,
  });
}

/** An event; a kind this version does not know is corrupt (skipped and logged by readers). */
export function decodeEvent(key: string, text: string): ClusterEvent {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (err) {
    throw corrupt(key, `not JSON (${(err as Error).message})`);
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw corrupt(key, 'not an object');
  const r = o as Record<string, unknown>;
  if (r.v !== CODEC_VERSION) throw corrupt(key, `unsupported version ${JSON.stringify(r.v)}`);
  const kind = field(key, r, 'kind', 'string') as string;
  if (!isEventKind(kind)) throw corrupt(key, `field kind is not an event kind: ${JSON.stringify(kind)}`);
  const unit = r.unit === undefined ? undefined : (field(key, r, 'unit', 'string') as string);
  const machine = r.machine === undefined ? undefined : (field(key, r, 'machine', 'string') as string);
  return {
    time: field(key, r, 'time', 'number') as number,
    kind,
    ...(unit === undefined ? {} : { unit }),
    ...(machine === undefined ? {} : { machine }),
    message: field(key, r, 'message', 'string') as string,
    reporter: field(key, r, 'reporter', 'string') as string,
  };
}
