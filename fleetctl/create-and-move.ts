import { mapLimit } from '../lib/concurrency.js';
import { REQUEST_CONCURRENCY } from './blocking.js';
import type { ApiUnit } from './client.js';
import type { Context } from './context.js';
import { createUnits } from './create-units.js';
import { changeUnitStates } from './state-changes.js';

/**
 * `load` and `start`: create what is missing (fleet's `lazyCreateUnits`), then move every named
 * unit to the command's desired state and wait. Nothing is moved when a unit could not be created.
 * Resolves with the exit code.
 */
export async function createAndMove(
  ctx: Context,
  args: readonly string[],
  command: 'load' | 'start',
  options: { readonly replace: boolean; readonly attempts: number },
): Promise<number> {
  if (args.length === 0) {
    ctx.err('No units given');
    return 1;
  }
  const created = await createUnits(ctx, args, { command, ...options });
  if (!created.ok) return 1;
  const client = ctx.client();
  const units: ApiUnit[] = [];
  let ok = true;
  // Units read while being created are not read again.
  const found = await mapLimit(created.names, REQUEST_CONCURRENCY, async (name) =>
    created.read.has(name) ? created.read.get(name) : client.getUnit(name),
  );
  for (const [i, name] of created.names.entries()) {
    const unit = found[i];
    if (unit === undefined) {
      ctx.err(`Unit ${name} does not exist.`);
      ok = false;
    } else units.push(unit);
  }
  const moved = await changeUnitStates(ctx, units, command, options.attempts);
  return ok && moved.ok ? 0 : 1;
}
