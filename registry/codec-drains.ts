import type { DrainHeldUnit, DrainMark, DrainMovePhase, DrainProgress } from './model.js';
import {
  bool,
  corrupt,
  encode,
  num,
  object,
  str,
  stringMap,
  strings,
  validateMachineId,
  type Json,
} from './codec.js';

/** Drain marks and the engine's progress on them, as stored (versioned JSON, see codec.ts). */

export function encodeDrainMark(mark: DrainMark): string {
  return encode({
    machine: mark.machine,
    maxParallel: mark.maxParallel,
    force: mark.force,
    requestedAt: mark.requestedAt,
  });
}

export function decodeDrainMark(key: string, text: string): DrainMark {
  const o = object(key, text);
  const maxParallel = num(key, o, 'maxParallel');
  if (!Number.isInteger(maxParallel) || maxParallel < 1) throw corrupt(key, 'field maxParallel is not >= 1');
  const machine = str(key, o, 'machine');
  const bad = validateMachineId(machine);
  if (bad !== undefined) throw corrupt(key, bad);
  return {
    machine,
    maxParallel,
    force: bool(key, o, 'force'),
    requestedAt: num(key, o, 'requestedAt'),
  };
}

export function encodeDrainProgress(p: DrainProgress): string {
  return encode({
    state: p.state,
    moving: p.moving,
    moved: p.moved,
    stuck: p.stuck,
    forced: p.forced,
    failed: p.failed,
  });
}

function heldUnits(key: string, v: unknown, field: string): DrainHeldUnit[] {
  if (!Array.isArray(v)) throw corrupt(key, `field ${field} is not a list`);
  return (v as unknown[]).map((item) => {
    if (typeof item !== 'object' || item === null) throw corrupt(key, `field ${field} holds a non-object`);
    const o = item as Json;
    return { unit: str(key, o, 'unit'), reason: str(key, o, 'reason') };
  });
}

export function decodeDrainProgress(key: string, text: string): DrainProgress {
  const o = object(key, text);
  const state = o.state;
  if (state !== 'draining' && state !== 'drained') throw corrupt(key, 'field state is not a drain state');
  const moving: Record<string, DrainMovePhase> = {};
  for (const [unit, phase] of Object.entries(stringMap(key, o.moving, 'moving'))) {
    if (phase !== 'stopping' && phase !== 'starting')
      throw corrupt(key, `field moving.${unit} is not a phase`);
    moving[unit] = phase;
  }
  return {
    state,
    moving,
    moved: strings(key, o.moved, 'moved'),
    stuck: heldUnits(key, o.stuck, 'stuck'),
    forced: heldUnits(key, o.forced, 'forced'),
    failed: heldUnits(key, o.failed, 'failed'),
  };
}
