import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { describeError } from '../lib/errors.js';
import { formatProblem, type UnitProblem, type UnitResult } from '../unit/problems.js';
import { parseUnit, unitFromOptions, type Unit } from '../unit/unit.js';
import { templateOf } from '../unit/unit-name.js';
import type { ApiUnitOption, FleetClient } from './client.js';
import type { Context } from './context.js';

/**
 * Unit files on the user's disk (docs/fleet-compat.md §1.8): an argument names a file; when no such file
 * exists and the name is an instance (`web@1.service`), its template (`web@.service`) is taken
 * from the registry or from a file next to the argument. Every file is validated locally with
 * the same parser the server uses, and all its problems are reported at once.
 */

/** A unit ready to submit: its options, their hash, and where they came from. */
export interface LocalUnit {
  readonly name: string;
  readonly options: readonly ApiUnitOption[];
  readonly hash: string;
  /** The file read (as the user would name it), or `registry template web@.service`. */
  readonly source: string;
  /** True when the options were copied from a template. */
  readonly fromTemplate: boolean;
  /** Problems that do not make the unit invalid (deprecated options). */
  readonly warnings: readonly UnitProblem[];
}

/** How looking for a unit's file ended. */
export type Resolution =
  | { readonly kind: 'found'; readonly unit: LocalUnit }
  | { readonly kind: 'invalid'; readonly source: string; readonly problems: readonly UnitProblem[] }
  | { readonly kind: 'missing'; readonly message: string }
  | { readonly kind: 'unreadable'; readonly message: string };

type ReadResult =
  | { readonly kind: 'read'; readonly data: Buffer }
  | { readonly kind: 'absent' }
  | { readonly kind: 'error'; readonly message: string };

async function readIfExists(path: string): Promise<ReadResult> {
  try {
    return { kind: 'read', data: await readFile(path) };
  } catch (err) {
    if (err instanceof Error && 'code' in err && (err.code === 'ENOENT' || err.code === 'ENOTDIR'))
      return { kind: 'absent' };
    return { kind: 'error', message: describeError(err) };
  }
}

function fromParsed(result: UnitResult<Unit>, source: string, fromTemplate: boolean): Resolution {
  if (!result.ok) return { kind: 'invalid', source, problems: result.problems };
  const u = result.value;
  return {
    kind: 'found',
    unit: {
      name: u.name,
      options: u.file.options.map((o) => ({ section: o.section, name: o.name, value: o.value })),
      hash: u.hash,
      source,
      fromTemplate,
      warnings: u.warnings,
    },
  };
}

async function fromFile(
  cwd: string,
  file: string,
  name: string,
  fromTemplate: boolean,
): Promise<Resolution | undefined> {
  const read = await readIfExists(resolve(cwd, file));
  switch (read.kind) {
    case 'absent':
      return undefined;
    case 'error':
      return { kind: 'unreadable', message: `failed getting Unit(${file}) from file: ${read.message}` };
    case 'read':
      return fromParsed(parseUnit(name, read.data, { file }), file, fromTemplate);
  }
}

/** The local template file of an instance argument: the template's name next to the argument. */
export function localTemplatePath(arg: string, name: string): string | undefined {
  const template = templateOf(name);
  return template === undefined ? undefined : join(dirname(arg), template);
}

/**
 * Reads the unit `arg` names from disk only: the file itself, or for an instance without one, the
 * template file next to it. `missing` when neither exists.
 */
export async function readLocalUnit(cwd: string, arg: string, name: string): Promise<Resolution> {
  const own = await fromFile(cwd, arg, name, false);
  if (own !== undefined) return own;
  const templatePath = localTemplatePath(arg, name);
  if (templatePath !== undefined) {
    const viaTemplate = await fromFile(cwd, templatePath, name, true);
    if (viaTemplate !== undefined) return viaTemplate;
    return {
      kind: 'missing',
      message: `unable to find template Unit(${templateOf(name) ?? ''}) on filesystem`,
    };
  }
  return { kind: 'missing', message: `unable to find Unit(${name}) on filesystem` };
}

/**
 * fleet's `getUnitFile`: the file `arg` names if it exists; otherwise, for an instance, the
 * template from the registry, else the template file next to `arg`. Messages are fleet's.
 */
export async function resolveUnitFile(
  ctx: Context,
  client: FleetClient,
  arg: string,
  name: string,
): Promise<Resolution> {
  const own = await fromFile(ctx.cwd, arg, name, false);
  if (own !== undefined) return own;
  const template = templateOf(name);
  if (template === undefined) {
    return { kind: 'missing', message: `unable to find Unit(${name}) in Registry or on filesystem` };
  }
  const registered = await client.getUnit(template);
  if (registered !== undefined) {
    const source = `registry template ${template}`;
    return fromParsed(unitFromOptions(name, registered.options, { file: source }), source, true);
  }
  const templatePath = localTemplatePath(arg, name) ?? template;
  const local = await fromFile(ctx.cwd, templatePath, name, true);
  if (local !== undefined) return local;
  return {
    kind: 'missing',
    message: `unable to find template Unit(${template}) in Registry or on filesystem`,
  };
}

/** Prints a unit's warnings (deprecated options) to stderr. */
export function printWarnings(ctx: Context, unit: LocalUnit): void {
  for (const w of unit.warnings) ctx.warn(formatProblem(w));
}

/** Prints every problem of an invalid unit file to stderr, one per line. */
export function printProblems(ctx: Context, problems: readonly UnitProblem[]): void {
  for (const p of problems) ctx.err(formatProblem(p));
}
