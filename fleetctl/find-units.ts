import { globMatches } from '../unit/glob.js';
import type { ApiUnit } from './client.js';
import type { Context } from './context.js';
import { unitNames } from './create-units.js';

/**
 * fleet's `findUnits`: the named units that exist in the registry, in argument order without
 * duplicates. fleet dropped unknown names silently; we name each one on stderr with the closest
 * submitted name (the commands exit 1 for them). A name with glob characters (`web-*`) matches
 * the submitted units, as fleet's help promised.
 */

const GLOB_CHARS = /[*?[]/;

/** Levenshtein distance between two names (small strings: a plain table is fine). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

/**
 * The submitted name closest to `name`, when it is close enough to be a typo (at most a third of
 * the name's characters differ, at least 1, at most 4), else undefined. Ties go to the first in
 * sort order.
 */
export function closestName(name: string, names: readonly string[]): string | undefined {
  const limit = Math.min(4, Math.max(1, Math.floor(name.length / 3)));
  let best: { name: string; d: number } | undefined;
  for (const candidate of [...names].sort()) {
    const d = editDistance(name, candidate);
    if (d <= limit && (best === undefined || d < best.d)) best = { name: candidate, d };
  }
  return best?.name;
}

/** `Unit X not found in registry`, with `(did you mean Y?)` when a submitted name is close. */
export function notFoundMessage(name: string, submitted: readonly string[]): string {
  const near = GLOB_CHARS.test(name) ? undefined : closestName(name, submitted);
  const what = GLOB_CHARS.test(name)
    ? `No unit matching ${name} in registry`
    : `Unit ${name} not found in registry`;
  return near === undefined ? what : `${what} (did you mean ${near}?)`;
}

/**
 * The unit names the arguments stand for: each argument mangled as fleet does, and each one
 * with glob characters replaced by the submitted units it matches (sorted); in order, without
 * duplicates. `unmatched` are the globs that matched nothing. Reads the unit list only when
 * there is a glob.
 */
export async function expandUnitArgs(
  ctx: Context,
  args: readonly string[],
): Promise<{ names: string[]; unmatched: string[]; submitted: () => Promise<string[]> }> {
  let list: Promise<string[]> | undefined;
  const submitted = (): Promise<string[]> => {
    list ??= ctx
      .client()
      .listUnits()
      .then((units) => units.map((u) => u.name));
    return list;
  };
  const names: string[] = [];
  const unmatched: string[] = [];
  const seen = new Set<string>();
  const add = (name: string): void => {
    if (seen.has(name)) return;
    seen.add(name);
    names.push(name);
  };
  for (const { name } of unitNames(args)) {
    if (!GLOB_CHARS.test(name)) {
      add(name);
      continue;
    }
    const matches = (await submitted()).filter((n) => globMatches(name, n)).sort();
    if (matches.length === 0) unmatched.push(name);
    for (const m of matches) add(m);
  }
  return { names, unmatched, submitted };
}

export async function findUnits(
  ctx: Context,
  args: readonly string[],
): Promise<{ found: ApiUnit[]; missing: string[] }> {
  const client = ctx.client();
  const found: ApiUnit[] = [];
  const { names, unmatched, submitted } = await expandUnitArgs(ctx, args);
  const missing: string[] = [...unmatched];
  for (const name of names) {
    const unit = await client.getUnit(name);
    if (unit === undefined) missing.push(name);
    else found.push(unit);
  }
  if (missing.length > 0) {
    const all = await submitted();
    for (const name of missing) ctx.err(notFoundMessage(name, all));
  }
  return { found, missing };
}
