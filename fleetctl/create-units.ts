import { describeError } from '../lib/errors.js';
import { mapLimit } from '../lib/concurrency.js';
import { mangleUnitName, templateOf } from '../unit/unit-name.js';
import { NO_BLOCK, REQUEST_CONCURRENCY } from './blocking.js';
import type { ApiUnit } from './client.js';
import type { Context } from './context.js';
import { optionsHash } from './unit-data.js';
import {
  printProblems,
  printWarnings,
  readLocalUnit,
  resolveUnitFile,
  type LocalUnit,
} from './unit-files.js';
import { unitStateLine, waitForUnitState } from './waits.js';

/**
 * fleet's `lazyCreateUnits` (docs/fleet-compat.md §1.8), shared by submit, load and start: each argument
 * names a unit; missing units are created from their local file (or template), existing ones are
 * compared with the local file and, with `--replace`, replaced when it differs. A created unit is
 * waited for until it reads `inactive`, as fleet does, unless `--no-block` was given.
 */

/** From this many arguments on, the registry's units are read with one list request. */
const LIST_FROM = 4;

/** The commands that create units. */
export type CreatingCommand = 'submit' | 'load' | 'start';

/** The desired states in which each command may replace a unit (fleet's `checkReplaceUnitState`). */
const REPLACEABLE_IN: Readonly<Record<CreatingCommand, readonly string[]>> = {
  submit: ['inactive'],
  load: ['inactive', 'loaded'],
  start: ['inactive', 'loaded', 'launched'],
};

/** How `createUnits` behaves for one command. */
export interface CreateOptions {
  readonly command: CreatingCommand;
  readonly replace: boolean;
  /** Block attempts for the wait after creation (`NO_BLOCK`: do not wait). */
  readonly attempts: number;
}

/** The unit names the arguments stand for, in order without duplicates, and whether all went well. */
export interface CreateResult {
  readonly ok: boolean;
  readonly names: readonly string[];
  /**
   * The units as last read here, by name: as found (when left alone) or as waited for after
   * creation. A name without an entry was not read since its change (`--no-block`, failures).
   */
  readonly read: ReadonlyMap<string, ApiUnit>;
}

/** The unit names of the arguments, mangled as fleet does, in order without duplicates. */
export function unitNames(args: readonly string[]): { name: string; arg: string }[] {
  const seen = new Set<string>();
  const out: { name: string; arg: string }[] = [];
  for (const arg of args) {
    const name = mangleUnitName(arg);
    if (seen.has(name)) continue;
    seen.add(name);
    out.push({ name, arg });
  }
  return out;
}

/** Creates (or replaces) the units named by `args`; see the module comment. */
export async function createUnits(
  ctx: Context,
  args: readonly string[],
  options: CreateOptions,
): Promise<CreateResult> {
  const client = ctx.client();
  const created: string[] = [];
  let ok = true;
  const fail = (message: string): void => {
    ctx.err(`Error creating units: ${message}`);
    ok = false;
  };

  // Submissions are queued and sent concurrently; their outcomes are reported in argument order
  // at the end. An instance whose template is queued waits until the template is in the
  // registry, so that it resolves against the registry's template as it would one by one.
  const queued: LocalUnit[] = [];
  const submitted: string[] = [];
  const failures = new Map<string, string>();
  const submit = (unit: LocalUnit): void => {
    printWarnings(ctx, unit);
    queued.push(unit);
    submitted.push(unit.name);
  };
  const flush = async (): Promise<void> => {
    const batch = queued.splice(0);
    await mapLimit(batch, REQUEST_CONCURRENCY, async (unit) => {
      try {
        await client.createUnit(unit.name, unit.options);
      } catch (err) {
        failures.set(unit.name, `failed creating Unit(${unit.name}): ${describeError(err)}`);
      }
    });
  };

  const targets = unitNames(args);
  // What the registry has for every argument, read at once: one list for many units.
  let registered: (ApiUnit | undefined)[];
  if (targets.length >= LIST_FROM) {
    const all = new Map((await client.listUnits()).map((u) => [u.name, u]));
    registered = targets.map(({ name }) => all.get(name));
  } else {
    registered = await mapLimit(targets, REQUEST_CONCURRENCY, ({ name }) => client.getUnit(name));
  }
  const read = new Map<string, ApiUnit>();
  for (const [i, { name, arg }] of targets.entries()) {
    const existing = registered[i];
    if (existing !== undefined) read.set(name, existing);
    if (existing !== undefined && !options.replace) {
      const local = await readLocalUnit(ctx.cwd, arg, name);
      if (local.kind === 'found' && local.unit.hash !== optionsHash(existing.options)) {
        const kind = local.unit.fromTemplate ? 'local template unit file' : 'local unit file';
        ctx.warn(`Unit ${name} in registry differs from ${kind} ${arg}. Add --replace to override.`);
      }
      continue;
    }
    const template = templateOf(name);
    if (template !== undefined && queued.some((u) => u.name === template)) await flush();
    const resolved = await resolveUnitFile(ctx, client, arg, name);
    switch (resolved.kind) {
      case 'missing':
      case 'unreadable':
        fail(resolved.message);
        continue;
      case 'invalid':
        printProblems(ctx, resolved.problems);
        fail(`${resolved.source} is not a valid unit file (${countProblems(resolved.problems.length)})`);
        continue;
      case 'found':
        break;
    }
    if (existing === undefined) {
      submit(resolved.unit);
      continue;
    }
    if (resolved.unit.hash === optionsHash(existing.options)) {
      ctx.out(`Found same Unit(${name}) in Registry, nothing to do`);
      continue;
    }
    const desired = existing.desiredState ?? 'inactive';
    if (!REPLACEABLE_IN[options.command].includes(desired)) {
      ctx.err(`Warning: can not replace Unit(${name}) in state '${desired}', use the appropriate command`);
      ok = false;
      continue;
    }
    submit(resolved.unit);
  }
  await flush();
  for (const name of submitted) read.delete(name);
  for (const name of submitted) {
    const failure = failures.get(name);
    if (failure === undefined) created.push(name);
    else fail(failure);
  }

  if (options.attempts !== NO_BLOCK && created.length > 0) {
    const waits = created.map((name) => waitForUnitState(ctx, name, 'inactive', options.attempts));
    for (const wait of waits) {
      const result = await wait;
      if (result.ok) {
        read.set(result.value.name, result.value);
        ctx.out(await unitStateLine(ctx, result.value, 'inactive'));
      } else {
        ctx.err(`Error waiting on unit creation: ${result.why ?? 'unknown error'}`);
        ok = false;
      }
    }
  }
  return { ok, names: targets.map((t) => t.name), read };
}

function countProblems(n: number): string {
  return n === 1 ? '1 problem' : `${n} problems`;
}
