import type { ApiDrain, ApiMachine } from './client.js';

/**
 * What `fleetctl drain` prints while it waits, as a pure function of two looks at a drain: one
 * line per change (a unit starts moving, has moved, failed where it went, cannot move, was
 * stopped by force), so a line is printed once however often fleetctl polls.
 */

/** The lines to print going from `before` (undefined at the first look) to `after`. */
export function drainProgressLines(before: ApiDrain | undefined, after: ApiDrain): string[] {
  const lines: string[] = [];
  const was = new Map((before?.moving ?? []).map((m) => [m.unit, m.phase]));
  for (const m of after.moving) {
    if (was.get(m.unit) === m.phase) continue;
    lines.push(
      m.phase === 'stopping' ? `Moving ${m.unit}: stopping` : `Moving ${m.unit}: starting elsewhere`,
    );
  }
  const known = (list: readonly { unit: string }[] | readonly string[] | undefined) =>
    new Set((list ?? []).map((x) => (typeof x === 'string' ? x : x.unit)));
  const moved = known(before?.moved);
  for (const u of after.moved) if (!moved.has(u)) lines.push(`Moved ${u}`);
  const failed = known(before?.failed);
  for (const f of after.failed) if (!failed.has(f.unit)) lines.push(`Failed to move ${f.unit}: ${f.reason}`);
  const stuck = new Map((before?.stuck ?? []).map((s) => [s.unit, s.reason]));
  for (const s of after.stuck)
    if (stuck.get(s.unit) !== s.reason) lines.push(`Cannot move ${s.unit}: ${s.reason}`);
  const forced = known(before?.forced);
  for (const f of after.forced)
    if (!forced.has(f.unit)) lines.push(`Stopped ${f.unit} (cannot move: ${f.reason})`);
  return lines;
}

/** The machine a user named: an exact ID, or a prefix of exactly one live machine's ID. */
export function resolveMachine(
  machines: readonly ApiMachine[],
  arg: string,
): { readonly id: string } | { readonly error: string } {
  if (machines.some((m) => m.id === arg)) return { id: arg };
  const matches = machines.filter((m) => m.id.startsWith(arg));
  if (matches.length === 1 && matches[0] !== undefined) return { id: matches[0].id };
  if (matches.length === 0) return { error: `No live machine matches ${arg}` };
  return { error: `Machine ID ${arg} is ambiguous: ${matches.map((m) => m.id).join(', ')}` };
}
