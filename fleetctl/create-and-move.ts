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
  for (const name of created.names) {
    const unit = await client.getUnit(name);
    if (unit === undefined) {
      ctx.err(`Unit ${name} does not exist.`);
      ok = false;
    } else units.push(unit);
  }
  const moved = await changeUnitStates(ctx, units, command, options.attempts);
  return ok && moved.ok ? 0 : 1;
}
