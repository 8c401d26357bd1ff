import type { ApiUnit } from './client.js';
import type { Context } from './context.js';
import { unitNames } from './create-units.js';

/**
 * fleet's `findUnits`: the named units that exist in the registry, in argument order without
 * duplicates. fleet dropped unknown names silently; we name each one on stderr (and the commands
 * exit 1 for them), and say `Units not found in registry` when none exists.
 */
export async function findUnits(
  ctx: Context,
  args: readonly string[],
): Promise<{ found: ApiUnit[]; missing: string[] }> {
  const client = ctx.client();
  const found: ApiUnit[] = [];
  const missing: string[] = [];
  for (const { name } of unitNames(args)) {
    const unit = await client.getUnit(name);
    if (unit === undefined) missing.push(name);
    else found.push(unit);
  }
  if (found.length === 0) ctx.err('Units not found in registry');
  else for (const name of missing) ctx.err(`Unit ${name} not found in registry`);
  return { found, missing };
}
